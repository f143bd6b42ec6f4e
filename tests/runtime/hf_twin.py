"""Training a `transformers` twin beside a specc run: the same AdamW groups, and a replay of the run's steps
whose every loss, learning rate and gradient norm must match the run's metrics (the training-parity tests)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import pytest
import torch

from specc.runtime.config import TrainConfig
from specc.runtime.objectives import Batch
from specc.runtime.train.optim import lr_at, param_groups

REL_TOL = 1e-4


def same_adamw(hf: torch.nn.Module, init: torch.nn.Module, rules: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over `hf` in which a parameter decays iff the specc parameter it maps to (through `rules`) does, and
    learns at that parameter's multiple of the rate (`lr_scale`, e.g. T5's relative position bias tables)."""
    specc_groups = param_groups(init, cfg)
    group_of = {id(p): (g.get("lr_scale", 1.0), g["weight_decay"]) for g in specc_groups for p in g["params"]}
    ours = dict(init.named_parameters())
    target = {src: rule.target for rule in rules for src in rule.sources}
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    covered = set()
    for name, p in hf.named_parameters():
        groups.setdefault(group_of[id(ours[target[name]])], []).append(p)
        covered.add(id(ours[target[name]]))
    assert covered == set(group_of)  # every specc tensor has its transformers twin(s), in its group
    return torch.optim.AdamW([{"params": ps, "weight_decay": decay, "lr_scale": scale} for (scale, decay), ps in groups.items()],
                             lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def replay(hf: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig, batches: Iterable[Batch],
           logged: list[dict[str, Any]], loss_of: Callable[[torch.nn.Module, Batch], torch.Tensor]) -> None:
    """Train `hf` on `batches` and compare each step with specc's logged loss, learning rate and gradient norm."""
    hf.train()
    for step, (line, batch) in enumerate(zip(logged, batches)):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg) * group["lr_scale"]
        loss = loss_of(hf, batch)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(hf.parameters(), cfg.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        assert line["lr"] == pytest.approx(lr_at(step, cfg), rel=1e-12)
        rel = abs(line["loss"] - loss.item()) / abs(loss.item())
        assert rel <= REL_TOL, f"step {step + 1}: specc {line['loss']:.7f}, transformers {loss.item():.7f} (rel {rel:.2e})"
        assert line["grad_norm"] == pytest.approx(float(norm), rel=1e-3), f"step {step + 1}: gradient norms differ"
    assert logged[-1]["loss"] < logged[0]["loss"] - 0.3  # it did learn: not a comparison of two flat lines
