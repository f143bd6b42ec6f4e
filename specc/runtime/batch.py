"""What one step feeds the model and what its losses add up to: `Batch` and `LossSums`.

Shared by batch layouts, objectives, tasks, the loop and distributed reduction,
so it sits below all of them (specc.runtime.objectives re-exports both, as part
of the objective interface).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing this module does not import torch
    import torch


@dataclass
class Batch:
    """Model inputs (by graph input name), targets, and bookkeeping."""

    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    tokens: int = 0  # tokens the model reads (for tokens/s)

    def to(self, device: torch.device) -> Batch:
        move = lambda d: {k: v.to(device, non_blocking=True) for k, v in d.items()}  # noqa: E731
        return Batch(move(self.inputs), move(self.targets), self.tokens)


@dataclass
class LossSums:
    """Loss totals that aggregate exactly: sum of per-item losses and item counts."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, total: float, count: int) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + total
        self.counts[name] = self.counts.get(name, 0) + count

    def merge(self, other: LossSums) -> None:
        for k in other.sums:
            self.add(k, other.sums[k], other.counts[k])

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / max(self.counts[k], 1) for k in self.sums}


METRIC_PREFIX = "acc_"  # LossSums entries named so are metrics (accuracies), shown but never summed into the loss


def is_loss(name: str) -> bool:
    """Whether a `LossSums` entry counts toward the loss (not a metric, not the gradient norm)."""
    return name != "grad_norm" and not name.startswith(METRIC_PREFIX)
