"""The optimizer ([train] optimizer: AdamW, Adafactor or SGD) with declared weight-decay exclusions, and the
learning-rate schedule."""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from specc.graph.names import matches
from specc.runtime.config import TrainConfig
from specc.runtime.errors import UserError


def param_groups(model: nn.Module, cfg: TrainConfig, scales: Mapping[str, float] | None = None) -> list[dict]:
    """Decayed and excluded (biases, norms, embeddings as declared in no_decay) parameters, and
    with learning-rate multipliers (`scales` per parameter name, times the declared `cfg.lr_scale`
    patterns) one such pair per multiplier; a multiplier of 0 freezes the parameter (it is left out and
    stops needing gradients)."""
    # A module's kind is its `no_decay_kind` ("norm", "embedding"), which the compiler sets from its op's declared
    # capabilities (specc.ops.base.OpRecord.no_decay_kind); any other parameter is a "bias" or a "weight" by name.
    kinds: dict[int, str] = {}
    for module in model.modules():
        kind = getattr(module, "no_decay_kind", None)
        for name, p in module.named_parameters(recurse=False):
            kinds.setdefault(id(p), kind or ("bias" if name == "bias" else "weight"))
    scales = declared_scales(model, cfg, scales)
    if scales is None:
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for p in model.parameters():  # unique parameters, in a stable order
            (no_decay if kinds.get(id(p)) in cfg.no_decay else decay).append(p)
        return [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():  # unique parameters, in a stable order
        scale = scales.get(name, 1.0)
        if scale == 0:
            p.requires_grad_(False)
            continue
        groups.setdefault((scale, kinds.get(id(p)) not in cfg.no_decay), []).append(p)
    return [{"params": ps, "weight_decay": cfg.weight_decay if decays else 0.0, "lr_scale": scale}
            for (scale, decays), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], not kv[0][1]))]


def declared_scales(model: nn.Module, cfg: TrainConfig, scales: Mapping[str, float] | None) -> dict[str, float] | None:
    """`scales` (a run's own multipliers: freezing, layer decay, a head's rate) times the multipliers
    `cfg.lr_scale` declares by name pattern; None when neither changes any parameter's rate."""
    if not cfg.lr_scale:
        return None if scales is None else dict(scales)
    out = dict(scales) if scales is not None else {}
    for name, _ in model.named_parameters():
        for p, factor in cfg.lr_scale.items():
            if matches(name, [p]):
                out[name] = out.get(name, 1.0) * factor
    return out


def freeze(model: nn.Module, scales: Mapping[str, float] | None) -> None:
    """Parameters with a learning-rate multiplier of 0 stop needing gradients."""
    for name, p in model.named_parameters():
        if scales is not None and scales.get(name, 1.0) == 0:
            p.requires_grad_(False)


def make_optimizer(model: nn.Module, cfg: TrainConfig, scales: Mapping[str, float] | None = None) -> torch.optim.Optimizer:
    """The declared optimizer over `param_groups`; its state dict saves and resumes as any torch optimizer's."""
    groups = param_groups(model, cfg, scales)
    try:  # AdamW's fused kernel is several times faster than the per-tensor loop, on CPU too
        if cfg.optimizer == "adafactor":
            return torch.optim.Adafactor(groups, lr=cfg.lr)
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=True)
    except (ValueError, TypeError) as err:  # torch's own domain checks (a beta outside [0, 1), a negative lr)
        raise UserError(f"the optimizer refuses the [train] settings: {err}") from None


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to `lr`, then cosine or linear decay to `lr * min_lr_ratio`."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "linear":
        return floor + (cfg.lr - floor) * (1 - progress)
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
