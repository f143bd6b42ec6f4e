"""Numerical faults in training: non-finite losses and gradients, loss spikes.

`judge` looks at one step's loss and gradient norm before its update is
applied and decides what the spec's ``[train]`` declares:

- a non-finite loss (NaN, inf): ``on_nan = "stop"`` (the default) ends the run
  with a `NumericalFault` naming the step, before the update and before any
  checkpoint of that step; ``on_nan = "skip"`` drops the step's update;
- non-finite gradients with a finite loss (an overflow in the backward pass):
  the update is dropped, always;
- ``[train.loss_spike]`` (window, factor, patience, action): a loss above
  `factor` times the mean of the last `window` accepted losses is a spike; with
  ``action = "skip"`` its update is dropped, with ``"stop"`` it is applied and
  logged; `patience` spikes in a row end the run (the loss has moved, it did
  not spike).

A dropped update leaves the weights and optimizer state as they were, while
the step count and data position move on, so a resumed run continues exactly.
Each decision other than a plain "apply" is one event line in metrics.jsonl;
`TrainState` counts skipped steps and holds the spike window, so both survive
a resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specc.runtime.runs import checkpoint
from specc.runtime.runs.checkpoint import TrainState
from specc.runtime.config import TrainConfig
from specc.runtime.errors import UserError


class NumericalFault(UserError):
    """Training stopped on a non-finite loss or persistent loss spikes."""


@dataclass(frozen=True)
class Verdict:
    apply: bool  # apply the step's update
    event: dict[str, Any] | None = None  # a line for metrics.jsonl


def judge(cfg: TrainConfig, state: TrainState, loss: float, grad_norm: float, run_dir: Path) -> Verdict:
    """The fate of step ``state.step + 1``, whose loss and gradient norm are given; updates `state`'s
    counters and spike window; raises `NumericalFault` when the run must stop."""
    step = state.step + 1
    if not math.isfinite(loss):
        if cfg.on_nan == "stop":
            raise NumericalFault(f"step {step}: the training loss is {loss}; the run stopped before applying it. "
                                 f"{_last_good(run_dir)} (declare [train] on_nan = \"skip\" to skip such steps)")
        return _skip(state, step, "nonfinite_loss", loss, grad_norm)
    if not math.isfinite(grad_norm):
        return _skip(state, step, "nonfinite_grad", loss, grad_norm)
    spike = cfg.loss_spike
    if spike is None:
        return Verdict(True)
    if len(state.recent_losses) >= spike.window:
        mean = sum(state.recent_losses) / len(state.recent_losses)
        if loss > spike.factor * mean:
            state.spikes += 1
            if state.spikes >= spike.patience:
                raise NumericalFault(f"step {step}: loss {loss:.4g} is {loss / mean:.1f}x the mean of the last {spike.window} "
                                     f"steps ({mean:.4g}): {state.spikes} spikes in a row, the [train.loss_spike] patience; "
                                     f"the run stopped. {_last_good(run_dir)}")
            if spike.action == "skip":
                return _skip(state, step, "loss_spike", loss, grad_norm, mean)
            return Verdict(True, {"step": step, "event": "loss_spike", "action": "applied", "step_loss": loss, "mean": mean,
                                  "spikes_in_a_row": state.spikes})
    state.spikes = 0
    state.recent_losses = (state.recent_losses + [loss])[-spike.window :]
    return Verdict(True)


def _skip(state: TrainState, step: int, reason: str, loss: float, grad_norm: float, mean: float | None = None) -> Verdict:
    state.skipped += 1
    event: dict[str, Any] = {"step": step, "event": "skipped", "reason": reason, "step_loss": _number(loss),
                             "grad_norm": _number(grad_norm), "skipped_steps": state.skipped}
    if mean is not None:
        event.update(mean=mean, spikes_in_a_row=state.spikes)
    return Verdict(False, event)


def _number(x: float) -> float | str:
    """JSON has no NaN or infinity: those are written as text."""
    return x if math.isfinite(x) else str(x)


def _last_good(run_dir: Path) -> str:
    ckpt = checkpoint.latest(run_dir)
    if ckpt is None:
        return "No checkpoint was written before it."
    return f"The last good checkpoint is {ckpt} (--resume {run_dir} continues from it)."
