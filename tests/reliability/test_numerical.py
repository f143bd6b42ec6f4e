"""Numerical faults: a NaN or inf loss, inf gradients, loss spikes, injected at chosen steps of a tiny GPT run.

The faults are injected into the pretraining workload's loss (`Pretraining.loss`):
the loss times NaN or inf, a loss whose gradients are infinite, a loss
multiplied 100-fold. What must follow is what `[train]` declares
(`specc.runtime.train.guard`): stop at that step with a named error and no checkpoint after
the last good one (which still loads), or skip the update and count it in
metrics.jsonl; a declared loss-spike policy logs and acts; a run with skipped
steps resumes bit-identical.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch
from safetensors.torch import load_file

from reltools import assert_clean_error, run_main
from runtools import GPT_TINY, sets
from specc.runtime.runs import checkpoint
from specc.runtime.train.workload import Pretraining

Record = Callable[..., None]
STEPS, PER_STEP = 12, 8  # batch_size 4 x grad_accum 2
SETS = sets(f"train.steps={STEPS}", "train.save_every=2", "train.eval_every=6", "train.keep=20", "train.device=cpu")[1::2]


class _InfGrad(torch.autograd.Function):
    """The identity whose gradient is infinite: a finite loss with an overflowing backward pass."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad * math.inf


FAULTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "nan": lambda loss: loss * math.nan,
    "inf": lambda loss: loss * math.inf,
    "inf gradients": _InfGrad.apply,
    "spike": lambda loss: loss * 100,
}


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, set[int]], None]:
    """`inject(fault, steps)`: the training loss of those optimizer steps (1-based) gets the fault."""

    def arm(fault: str, steps: set[int]) -> None:
        real_batch, real_loss = Pretraining.batch, Pretraining.loss

        def batch(self: Pretraining, first: int, size: int) -> Any:
            self._first = first  # type: ignore[attr-defined]
            return real_batch(self, first, size)

        def loss(self: Pretraining, outputs: Any, batch: Any, sums: Any) -> torch.Tensor:
            value = real_loss(self, outputs, batch, sums)
            if self._first // PER_STEP + 1 in steps:  # type: ignore[attr-defined]
                value = FAULTS[fault](value)
                if fault != "inf gradients":  # the totals the trainer judges see the fault too
                    for k in list(sums.sums):
                        sums.sums[k] = float(FAULTS[fault](torch.tensor(sums.sums[k])))
            return value

        monkeypatch.setattr(Pretraining, "batch", batch)
        monkeypatch.setattr(Pretraining, "loss", loss)

    return arm


def train(out: Path, *extra: str, resume: bool = False) -> None:
    from specc.runtime.train.jobs import train as job

    job(GPT_TINY, None if resume else str(out), str(out) if resume else None, [*SETS, *extra], quiet=True,
        say=lambda _: None)


def lines(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def events(run: Path) -> list[dict[str, Any]]:
    return [line for line in lines(run) if "event" in line]


def steps_saved(run: Path) -> list[int]:
    return sorted(int(d.name.split("-")[1]) for d in (run / "checkpoints").iterdir() if (d / checkpoint.MARKER).exists())


def assert_loads_and_is_finite(ckpt: Path) -> None:
    from specc.runtime.train.jobs import load_model

    model, _, _ = load_model(ckpt.parent.parent)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    state = torch.load(ckpt / "optimizer.pt", weights_only=True)["state"]
    assert all(torch.isfinite(t).all() for s in state.values() for t in s.values() if isinstance(t, torch.Tensor))


# -- a non-finite loss --------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["nan", "inf"])
def test_a_non_finite_loss_stops_the_run_at_that_step(capsys: pytest.CaptureFixture[str], inject: Any, tmp_path: Path,
                                                      tally: Record, fault: str) -> None:
    inject(fault, {5})
    out = tmp_path / "run"
    done = run_main(capsys, "train", GPT_TINY, "--out", str(out), "--quiet", *[a for s in SETS for a in ("--set", s)])
    word = "nan" if fault == "nan" else "inf"
    assert_clean_error(done, f"step 5: the training loss is {word}", f"The last good checkpoint is {out / 'checkpoints' / 'step-00000004'}",
                       'on_nan = "skip"')
    assert steps_saved(out) == [2, 4]  # nothing written after the last good step
    assert max(line["step"] for line in lines(out)) == 4
    assert_loads_and_is_finite(out / "checkpoints" / "step-00000004")
    _faults(tally, f"{fault} loss, stop", outcome="stopped at the step, last good checkpoint loads")


@pytest.mark.parametrize("fault", ["nan", "inf gradients"])
def test_a_skipped_step_leaves_the_weights_and_is_counted(inject: Any, tmp_path: Path, tally: Record, fault: str) -> None:
    inject(fault, {5, 9})
    out = tmp_path / "run"
    train(out, "train.save_every=1", *(["train.on_nan=skip"] if fault == "nan" else []))
    assert steps_saved(out)[-1] == STEPS
    reason = "nonfinite_loss" if fault == "nan" else "nonfinite_grad"
    assert [(e["step"], e["event"], e["reason"], e["skipped_steps"]) for e in events(out)] == [
        (5, "skipped", reason, 1), (9, "skipped", reason, 2)]
    by_step = {line["step"]: line for line in lines(out) if "loss" in line}
    assert "skipped_steps" not in by_step[4] and by_step[5]["skipped_steps"] == 1 and by_step[STEPS]["skipped_steps"] == 2
    root = out / "checkpoints"
    for skipped in (5, 9):  # the update was dropped: weights and optimizer state as after the step before
        before, after = root / f"step-{skipped - 1:08d}", root / f"step-{skipped:08d}"
        a, b = load_file(before / "model.safetensors"), load_file(after / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)
        oa = torch.load(before / "optimizer.pt", weights_only=True)["state"]
        ob = torch.load(after / "optimizer.pt", weights_only=True)["state"]
        assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i])
        assert json.loads((after / "state.json").read_text())["samples"] == skipped * PER_STEP  # the data moved on
    assert_loads_and_is_finite(root / f"step-{STEPS:08d}")
    _faults(tally, f"{fault}, skip", outcome="skipped and counted")


def test_inf_gradients_skip_even_when_nan_losses_stop(inject: Any, tmp_path: Path) -> None:
    """on_nan governs non-finite losses only; a finite loss with overflowing gradients is always skipped."""
    inject("inf gradients", {3})
    out = tmp_path / "run"
    train(out)
    assert [(e["step"], e["reason"]) for e in events(out)] == [(3, "nonfinite_grad")]
    assert [e["grad_norm"] for e in events(out)] in (["inf"], ["nan"])


# -- loss spikes ----------------------------------------------------------------------------------------
SPIKE = ["train.loss_spike.window=3", "train.loss_spike.factor=3.0", "train.loss_spike.patience=2"]


def test_a_loss_spike_is_skipped_and_logged(inject: Any, tmp_path: Path, tally: Record) -> None:
    inject("spike", {7})
    out = tmp_path / "run"
    train(out, *SPIKE, "train.loss_spike.action=skip")
    (event,) = events(out)
    assert (event["step"], event["event"], event["reason"], event["skipped_steps"]) == (7, "skipped", "loss_spike", 1)
    assert event["step_loss"] > 3 * event["mean"]
    assert steps_saved(out)[-1] == STEPS
    _faults(tally, "loss spike, skip", outcome="skipped and logged")


def test_spikes_in_a_row_stop_the_run(capsys: pytest.CaptureFixture[str], inject: Any, tmp_path: Path, tally: Record) -> None:
    inject("spike", {7, 8})
    out = tmp_path / "run"
    done = run_main(capsys, "train", GPT_TINY, "--out", str(out), "--quiet",
                    *[a for s in [*SETS, *SPIKE, "train.loss_spike.action=stop"] for a in ("--set", s)])
    assert_clean_error(done, "step 8: loss", "2 spikes in a row", f"{out / 'checkpoints' / 'step-00000006'}")
    (applied,) = events(out)  # the first spike was applied (action = "stop") and logged
    assert (applied["step"], applied["event"], applied["action"]) == (7, "loss_spike", "applied")
    assert steps_saved(out) == [2, 4, 6]
    _faults(tally, "loss spikes, stop", outcome="stopped after patience")


def test_a_run_with_skipped_steps_resumes_bit_identical(inject: Any, tmp_path: Path, tally: Record) -> None:
    """The skip count and the spike window are part of the checkpoint: a run interrupted between the faults decides
    the same after resuming as without the interruption."""
    inject("spike", {7, 10})
    extra = [*SPIKE, "train.loss_spike.action=skip", "train.loss_spike.patience=3"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train(reference, *extra)
    with pytest.raises(_Crash):
        with _crash_after(8):
            train(resumed, *extra)
    assert steps_saved(resumed)[-1] == 8
    train(resumed, *extra, resume=True)
    a = load_file(checkpoint.latest(reference) / "model.safetensors")  # type: ignore[operator]
    b = load_file(checkpoint.latest(resumed) / "model.safetensors")  # type: ignore[operator]
    assert all(torch.equal(a[k], b[k]) for k in a)
    volatile = {"tokens_per_s", "elapsed"}
    strip = [{k: v for k, v in line.items() if k not in volatile} for line in lines(reference)]
    assert strip == [{k: v for k, v in line.items() if k not in volatile} for line in lines(resumed)]
    assert [e["step"] for e in events(resumed)] == [7, 10]
    _faults(tally, "loss spike, skip, crash and resume", outcome="bit-identical")


class _Crash(Exception):
    pass


class _crash_after:
    """Make the trainer raise after optimizer step `step` (its checkpoint, if any, written)."""

    def __init__(self, step: int):
        self.step = step

    def __enter__(self) -> None:
        from specc.runtime.train import trainer

        self.real = trainer.Trainer.run

        def run(this: trainer.Trainer) -> Any:
            def hook(step: int) -> None:
                if step == self.step:
                    raise _Crash()

            this.on_step = hook
            return self.real(this)

        trainer.Trainer.run = run  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        from specc.runtime.train import trainer

        trainer.Trainer.run = self.real  # type: ignore[method-assign]


# -- the declared settings are checked like every other -------------------------------------------------
@pytest.mark.parametrize("setting, message", [
    ("train.on_nan=ignore", "'train.on_nan': Input should be 'stop' or 'skip'"),
    ("train.loss_spike.factor=0.5", "'train.loss_spike.factor': Input should be greater than 1"),
    ("train.loss_spike.windw=5", "unknown key 'windw'"),
])
def test_fault_settings_are_validated(capsys: pytest.CaptureFixture[str], setting: str, message: str) -> None:
    done = run_main(capsys, "check", GPT_TINY, "--set", setting)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


_TOTALS: dict[str, str] = {}


def _faults(tally: Record, name: str, outcome: str) -> None:
    _TOTALS[name] = outcome
    tally("numerical faults", injected=len(_TOTALS), **{k.replace(" ", "_").replace(",", ""): v for k, v in _TOTALS.items()})


@pytest.fixture(autouse=True)
def _no_leftover_patches() -> Iterator[None]:
    yield
    from specc.runtime.train import trainer

    assert trainer.Trainer.run.__name__ == "run"
