"""keep_best: the checkpoint of the best evaluation is kept beside the last N, named in state.json, and read by
default afterwards (final scores, eval, predict, merge, export-hf), unless --step or --last choose another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import SPECS
from specc.runtime.runs import checkpoint
from specc.runtime.errors import UserError
from specc.runtime.train.finetune import finetune, load_task_run
from specc.runtime.tasks import TaskWorkload
from test_finetune import cli
from test_lora import SMALL, _data, _sets

SCRIPT = [0.5, 0.9, 0.6, 0.7]  # the monitored accuracy at steps 2, 4, 6, 8: the best is step 4's


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation scores that rise, fall and rise again, whatever the model learns."""
    calls: list[int] = []

    def evaluate(self: TaskWorkload, model: Any, device: Any, cfg: Any) -> dict[str, float]:
        calls.append(1)
        return {"val_loss": 1.0, "val_accuracy": SCRIPT[len(calls) - 1], "val_f1_macro": 0.0, "val_mcc": 0.0}

    monkeypatch.setattr(TaskWorkload, "evaluate", evaluate)


def _run(tmp_path: Path, *extra: str) -> Path:
    train, val = _data(tmp_path, "sentiment")
    sets = [s for s in _sets("sentiment", train, val, SMALL, 8) if "eval_every" not in s and "save_every" not in s]
    sets += ["tasks.sentiment.train.eval_every=2", "tasks.sentiment.train.save_every=100", "tasks.sentiment.train.keep=1",
             *extra]
    lines: list[str] = []
    finetune(str(SPECS / "bert-tiny-sentiment.toml"), None, str(tmp_path / "run"), "sentiment", sets, quiet=True,
             say=lines.append)
    assert any("scoring the best checkpoint, step-00000004 (accuracy 0.9000)" in line for line in lines) == \
        ("tasks.sentiment.train.keep_best=false" not in extra), lines
    return tmp_path / "run"


def test_the_best_checkpoint_is_kept_named_and_read_by_default(scripted: None, tmp_path: Path) -> None:
    run = _run(tmp_path)
    kept = sorted(d.name for d in (run / "checkpoints").iterdir())
    assert kept == ["step-00000004", "step-00000008"]  # keep = 1, and the best beside it
    latest = checkpoint.require_latest(run)
    assert checkpoint.load_state(latest).best_step == 4 and checkpoint.load_state(latest).best_val == 0.9
    assert checkpoint.best(run).name == "step-00000004"
    assert load_task_run(run, "cpu").ckpt.name == "step-00000004"
    assert load_task_run(run, "cpu", last=True).ckpt.name == "step-00000008"
    assert load_task_run(run, "cpu", step=8).ckpt.name == "step-00000008"
    with pytest.raises(UserError, match="no complete checkpoint of step 6 \\(kept: 4, 8\\)"):
        load_task_run(run, "cpu", step=6)
    scores = json.loads((run / "eval.json").read_text())  # the final scores are the best checkpoint's
    from specc.runtime.train.finetune import evaluate_run

    best = evaluate_run(str(run), split="validation", say=lambda s: None)
    assert scores["validation"]["metrics"] == best.metrics
    for flags in (["--last"], ["--step", "4"], []):
        code, stdout, stderr = cli("eval", str(run), "--json", *flags)
        assert code == 0 and json.loads(stdout)["examples"] == 4, stderr


def test_keep_best_false_keeps_only_the_last(scripted: None, tmp_path: Path) -> None:
    run = _run(tmp_path, "tasks.sentiment.train.keep_best=false")
    assert sorted(d.name for d in (run / "checkpoints").iterdir()) == ["step-00000008"]
    assert checkpoint.load_state(checkpoint.require_latest(run)).best_step == 0
    assert load_task_run(run, "cpu").ckpt.name == "step-00000008"
