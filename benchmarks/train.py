"""Training step (forward + loss + backward + clipping + fused AdamW), side by side.

Every variant trains on the same batch from the same weights, so their first
losses must agree; `loss_rel_diff` records how far apart they are. specc's
step is the trainer's: the compiled model, the objectives' own loss (the
chunked vocabulary cross-entropy), `specc.runtime.train.optim`'s optimizer.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from specc.runtime.config import TrainConfig
from specc.runtime.batch import Batch, LossSums
from specc.runtime.objectives import ObjectiveSet
from specc.runtime.objectives.base import cross_entropy_sum
from specc.runtime.train.optim import make_optimizer

from benchmarks.data import Source, hf_labels
from benchmarks.harness import interleave, peak_bytes
from benchmarks.models import Shape, Trio, build

LossFn = Callable[[], torch.Tensor]
TASKS = {  # benchmark name → (family, objectives, transformers class task)
    "gpt-clm": ("gpt", ("causal_lm",), ""),
    "bert-mlm": ("bert", ("mlm",), "mlm"),
    "bert-mlm-nsp": ("bert", ("mlm", "nsp"), "pretraining"),
    "t5-span": ("t5", ("span_corruption",), ""),
}


@dataclass
class Stepper:
    """One optimizer step of `model` on the loss `loss_fn` computes."""

    model: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer

    def __call__(self) -> float:
        loss = self.loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    """What `transformers`' Trainer uses by default on torch >= 2.8: fused AdamW."""
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, fused=True)


def hf_loss(task: str, model: nn.Module, batch: Batch) -> LossFn:
    x, y = batch.inputs, batch.targets
    if task == "gpt-clm":  # `shift_labels`: the packed layout's labels are already the next tokens
        return lambda: model(input_ids=x["tokens"], labels=x["tokens"], shift_labels=y["labels"]).loss
    if task.startswith("bert"):
        labels = hf_labels(batch)
        extra = {"next_sentence_label": y["nsp_labels"]} if task == "bert-mlm-nsp" else {}
        return lambda: model(input_ids=x["tokens"], token_type_ids=x["segments"], attention_mask=x.get("attention_mask"),
                             labels=labels, **extra).loss
    return lambda: model(input_ids=x["src"], attention_mask=x["src_mask"], decoder_input_ids=x["tgt"],
                         decoder_attention_mask=x["tgt_mask"], labels=y["labels"]).loss


def ref_loss(task: str, model: nn.Module, batch: Batch) -> LossFn:
    x, y = batch.inputs, batch.targets
    if task == "gpt-clm":
        return lambda: model(x["tokens"], y["labels"])[1]
    labels = hf_labels(batch).view(-1)

    def bert() -> torch.Tensor:
        mlm, nsp = model(x["tokens"], x["segments"], x.get("attention_mask"))
        loss = torch.nn.functional.cross_entropy(mlm.view(-1, mlm.shape[-1]), labels)
        return loss + torch.nn.functional.cross_entropy(nsp, y["nsp_labels"]) if task == "bert-mlm-nsp" else loss

    return bert


def specc_loss(model: nn.Module, objectives: ObjectiveSet, batch: Batch, plain: bool = False) -> LossFn:
    """The trainer's loss; with `plain`, cross-entropy on materialised logits instead (the lever switched off)."""
    if not plain:
        return lambda: objectives.loss(model(**batch.inputs), batch, LossSums())
    (record, _), = objectives.entries
    output, labels = record.outputs[0], next(iter(batch.targets.values()))
    return lambda: cross_entropy_sum(model(**batch.inputs)[output], labels, LossSums(), "x")


def variants(task: str, trio: Trio, objectives: ObjectiveSet, batch: Batch, levers: bool) -> dict[str, Stepper]:
    out = {f"transformers {attn}": Stepper(m, hf_loss(task, m, batch), adamw(m)) for attn, m in trio.hf.items()}
    if trio.ref is not None:
        out["hand-written"] = Stepper(trio.ref, ref_loss(task, trio.ref, batch), adamw(trio.ref))
    if levers and len(objectives.entries) == 1:
        plain = copy.deepcopy(trio.specc)
        out["specc, plain CE"] = Stepper(plain, specc_loss(plain, objectives, batch, plain=True),
                                         make_optimizer(plain, TrainConfig()))
    out["specc"] = Stepper(trio.specc, specc_loss(trio.specc, objectives, batch), make_optimizer(trio.specc, TrainConfig()))
    return out


def steppers(task: str, shape: Shape, levers: bool = False, device: str = "cpu") -> tuple[dict[str, Stepper], Source, Batch]:
    """Each variant's training step of `task` at `shape` on one batch (models in train mode), the batch's source and the batch."""
    family, names, hf_task = TASKS[task]
    trio = build(family, shape, hf_task, device=device)
    source = Source(names, shape.vocab, shape.seq)
    batch = source.batch(0, shape.batch).to(torch.device(device))
    for m in [*trio.hf.values(), trio.specc] + ([trio.ref] if trio.ref is not None else []):
        m.train()
    return variants(task, trio, source.objectives, batch, levers), source, batch


def run(task: str, shape: Shape, reps: int, warmup: int, levers: bool = False, memory: bool = True,
        device: str = "cpu") -> dict[str, Any]:
    """Interleaved step times, first losses, peak memory and the share of a step spent outside the model."""
    steps, source, batch = steppers(task, shape, levers, device)
    first = {name: step() for name, step in steps.items()}  # same weights, same batch: the same loss
    timings = interleave(steps, reps, warmup, device)
    peaks = {name: peak_bytes(step, device) for name, step in steps.items()} if memory else {}
    tokens = int(batch.tokens) if batch.tokens else shape.batch * shape.seq
    base = min(v for k, v in first.items() if k.startswith("transformers"))
    return {
        "task": task, "shape": shape.name, "tokens_per_step": tokens,
        "variants": {name: {"time": t.as_dict(), "tokens_per_s": tokens / t.median, "first_loss": first[name],
                            "peak_bytes": peaks.get(name)} for name, t in timings.items()},
        "loss_rel_diff": max(abs(v - base) / abs(base) for v in first.values()),
        "outside": outside_share(source, shape, timings["specc"].median),
    }


def outside_share(source: Source, shape: Shape, step_s: float, reps: int = 5) -> dict[str, float]:
    """Seconds per step the trainer spends outside the model: building the batch, and writing the log line."""
    t_data, t_log = [], []
    for i in range(reps):
        t0 = time.perf_counter()
        source.batch(1 + i, shape.batch)
        t_data.append(time.perf_counter() - t0)
        sums = LossSums()
        sums.add("lm", 1.0, 1)
        t0 = time.perf_counter()
        json.dumps({"step": i, "loss": sum(sums.means().values()), **sums.means(), "lr": 1e-3, "tokens_per_s": 1.0})
        t_log.append(time.perf_counter() - t0)
    data, log = sorted(t_data)[reps // 2], sorted(t_log)[reps // 2]
    return {"data_s": data, "log_s": log, "step_s": step_s, "fraction": (data + log) / step_s}
