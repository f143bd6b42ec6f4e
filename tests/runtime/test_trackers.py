"""[train] loggers: trackers are switched on by name only; a named one that is not installed is a clear error
naming the extra; metrics reach each named tracker with their steps, and a resumed run continues the same
tracked run. The wiring is checked against recording stand-ins for the libraries (always); the real MLflow
(a local file store) and W&B (offline) when they are installed."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from specc.runtime.errors import UserError
from specc.runtime.train.jobs import train
from runtools import GPT_TINY, TINY

QUICK = [s for s in TINY if not s.startswith(("train.steps", "train.eval_every", "train.log_every"))] + \
    ["train.steps=4", "train.eval_every=2", "train.log_every=1", "train.save_every=2"]


def _run(out: Path, *extra: str, resume: bool = False) -> None:
    train(GPT_TINY, str(out), str(out) if resume else None, [*QUICK, *extra], quiet=True, say=lambda _: None)


class _FakeMLflow(types.ModuleType):
    """Records what specc asks of `mlflow`."""

    def __init__(self) -> None:
        super().__init__("mlflow")
        self.calls: list[tuple[str, Any]] = []
        self.runs = 0

    def set_tracking_uri(self, uri: str) -> None:
        self.calls.append(("uri", uri))

    def set_experiment(self, name: str) -> None:
        self.calls.append(("experiment", name))

    def start_run(self, run_id: str | None = None, run_name: str | None = None) -> Any:
        self.runs += run_id is None
        self.calls.append(("start", run_id or run_name))
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id or f"run-{self.runs}"))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.calls.append(("metrics", (step, dict(metrics))))

    def end_run(self) -> None:
        self.calls.append(("end", None))


@pytest.fixture
def fake_mlflow(monkeypatch: pytest.MonkeyPatch) -> _FakeMLflow:
    fake = _FakeMLflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    return fake


def test_an_installed_tracker_stays_off_unless_named(fake_mlflow: _FakeMLflow, tmp_path: Path) -> None:
    _run(tmp_path / "run")
    assert fake_mlflow.calls == []


def test_metrics_reach_a_named_tracker_and_a_resumed_run_continues_it(fake_mlflow: _FakeMLflow, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(out, 'train.loggers=["mlflow"]', "train.steps=2")
    assert fake_mlflow.calls[0] == ("uri", (out / "mlruns").resolve().as_uri())
    assert ("start", "run") in fake_mlflow.calls and fake_mlflow.calls[-1] == ("end", None)
    steps = [v[0] for k, v in fake_mlflow.calls if k == "metrics"]
    assert steps[:2] == [1, 2] and any("val_loss" in v[1] for k, v in fake_mlflow.calls if k == "metrics")
    fake_mlflow.calls.clear()
    _run(out, 'train.loggers=["mlflow"]', resume=True)
    assert ("start", "run-1") in fake_mlflow.calls and fake_mlflow.runs == 1  # the same MLflow run, continued
    assert [v[0] for k, v in fake_mlflow.calls if k == "metrics" and "loss" in v[1]] == [3, 4]


def test_a_named_tracker_that_is_not_installed_names_its_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails as if not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(UserError, match=r"loggers names 'wandb', but the wandb package is not installed: "
                                        r"pip install 'specc\[wandb\]'"):
        _run(tmp_path / "run", 'train.loggers=["wandb"]')
    assert not (tmp_path / "run").exists()


def test_an_unknown_logger_is_a_located_error(tmp_path: Path) -> None:
    from specc.diagnostics import SpecError

    with pytest.raises(SpecError, match="loggers"):
        _run(tmp_path / "run", 'train.loggers=["neptune"]')


def test_real_mlflow_file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'specc[mlflow]'); "
                                 "the stand-in tests above check the wiring")
    out = tmp_path / "run"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _run(out, 'train.loggers=["mlflow"]')
    client = mlflow.tracking.MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    run_id = (out / "tracker-mlflow.id").read_text()
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3, 4]


def test_real_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'specc[wandb]'); "
                        "the stand-in tests above check the wiring")
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "run"
    _run(out, 'train.loggers=["wandb"]')
    assert (out / "tracker-wandb.id").read_text() and any((out / "wandb").glob("offline-run-*"))
