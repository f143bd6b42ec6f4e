"""What the one training loop trains on: a `Workload`.

The trainer owns the loop (optimizer, schedule, accumulation, clipping,
autocast, evaluation cadence, early stopping, checkpoints, resumption); a
workload owns the data and the loss. Pretraining objectives (`Pretraining`)
and fine-tuning tasks (`specc.runtime.tasks.TaskWorkload`) both implement it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Protocol

import torch

from specc.runtime.config import TrainConfig
from specc.runtime.data.tokens import TokenStore
from specc.runtime.device import perplexity
from specc.runtime.train.loop import VAL_SEED_OFFSET, BatchSource, evaluate_shared
from specc.runtime.batch import Batch, LossSums, is_loss
from specc.runtime.objectives import ObjectiveSet
from specc.runtime.data.tokenizer import TextTokenizer

class Workload(Protocol):
    """Training data, loss and validation of one job, as the trainer sees them."""

    monitor: str  # the `evaluate` entry that decides "best" and early stopping
    higher_is_better: bool

    def batch(self, first: int, size: int) -> Batch:
        """Training samples `first .. first + size - 1` (a pure function of the index: resumable)."""
        ...

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        """The scalar to minimise; records exact totals in `sums`."""
        ...

    def evaluate(self, model: torch.nn.Module, device: torch.device, cfg: TrainConfig) -> dict[str, float]:
        """Validation numbers, `monitor` among them."""
        ...

    def start(self, model: torch.nn.Module) -> None:
        """Prepare a freshly initialised model (not called on resume): e.g. load pretrained weights."""
        ...

    def lr_scales(self, model: torch.nn.Module) -> dict[str, float] | None:
        """Learning-rate multiplier per parameter name (0 freezes it), or None for 1 everywhere."""
        ...

    def files(self) -> dict[str, str]:
        """Extra files (name → text) every checkpoint carries, e.g. a task's label set."""
        ...

    def weights_base(self) -> Path | None:
        """The checkpoint a fresh run starts its weights from (an adapted run's checkpoints build on it)."""
        ...


class Pretraining:
    """The workload of `specc train`: declared objectives over a token store."""

    monitor = "val_loss"
    higher_is_better = False

    def __init__(self, objectives: ObjectiveSet, tok: TextTokenizer, train_store: TokenStore, val_store: TokenStore,
                 cfg: TrainConfig):
        self.objectives = objectives
        self.train = BatchSource(objectives, train_store, tok, cfg.seq_len, cfg.seed)
        self.val = BatchSource(objectives, val_store, tok, cfg.seq_len, cfg.seed + VAL_SEED_OFFSET)

    def batch(self, first: int, size: int) -> Batch:
        return self.train.get(first, size)

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        return self.objectives.loss(outputs, batch, sums)

    def evaluate(self, model: torch.nn.Module, device: torch.device, cfg: TrainConfig) -> dict[str, float]:
        means = evaluate_shared(model, self.objectives, self.val, cfg, device).means()
        out = {"val_loss": sum(v for k, v in means.items() if is_loss(k)), **{f"val_{k}": v for k, v in means.items()}}
        if "lm" in means:
            out["val_ppl"] = perplexity(means["lm"])
        return out

    def start(self, model: torch.nn.Module) -> None:
        pass

    def lr_scales(self, model: torch.nn.Module) -> dict[str, float] | None:
        return None

    def files(self) -> dict[str, str]:
        return {}

    def weights_base(self) -> Path | None:
        return None
