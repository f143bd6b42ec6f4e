"""[train] loggers: trackers are switched on by name only; a named one that is not installed is a clear error
naming the extra; metrics reach each named tracker with their steps, and a resumed run continues the same
tracked run. The wiring is checked against recording stand-ins for the libraries (always); the real MLflow
(a local file store) and W&B (offline) when they are installed, as the `dev` extra does: the metrics they
hold are read back and compared with metrics.jsonl, across a stop and resume."""

from __future__ import annotations

import json
import struct
import sys
import types
from pathlib import Path
from typing import Any, Iterator

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
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")  # so that what specc sets is undone after the test
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
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


def _logged(out: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) of `key` in the run's metrics.jsonl: what every tracker must have received too."""
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in lines if key in r]


def _same_history(got: list[tuple[int, float]], out: Path, key: str) -> None:
    """The tracker's (step, value) pairs are metrics.jsonl's: the same steps, values within float rounding
    (pytest.approx takes flat sequences only)."""
    want = _logged(out, key)
    assert [s for s, _ in got] == [s for s, _ in want], key
    assert [v for _, v in got] == pytest.approx([v for _, v in want]), key


def _stopped_and_resumed(out: Path, logger: str) -> None:
    _run(out, f'train.loggers=["{logger}"]', "train.steps=2")
    _run(out, f'train.loggers=["{logger}"]', resume=True)


def test_real_mlflow_file_store_and_a_resumed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'specc[mlflow]'); "
                                 "the stand-in tests above check the wiring")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "")  # so that what specc sets is undone after the test
        monkeypatch.delenv(name)
    out = tmp_path / "run"
    _stopped_and_resumed(out, "mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("specc")
    runs = client.search_runs([experiment.experiment_id])
    run_id = (out / "tracker-mlflow.id").read_text()
    assert [r.info.run_id for r in runs] == [run_id]  # the resumed run continued the one MLflow run
    assert runs[0].info.run_name == "run" and runs[0].info.status == "FINISHED"
    for key in ("loss", "lr", "val_loss"):
        _same_history(sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)), out, key)
    assert [s for s, _ in _logged(out, "loss")] == [1, 2, 3, 4] and [s for s, _ in _logged(out, "val_loss")] == [2, 4]


def _wandb_records(path: Path) -> Iterator[Any]:
    """The records of an offline run's transaction log (`run-ID.wandb`): a LevelDB-style log of 32 KiB blocks
    after a 7-byte W&B header, each chunk a 7-byte header (crc32c, length, kind: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32 * 1024
    assert data[:4] == b":W&B"
    pos, parts = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        parts, pos = parts + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def test_real_wandb_offline_and_a_resumed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'specc[wandb]'); "
                        "the stand-in tests above check the wiring")
    monkeypatch.setenv("WANDB_MODE", "offline")  # never the network
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    out = tmp_path / "run"
    _stopped_and_resumed(out, "wandb")
    run_id = (out / "tracker-wandb.id").read_text()
    logs = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 2 and all(p.name == f"run-{run_id}.wandb" for p in logs)  # both halves are the one W&B run
    runs, history = [], []
    for log in logs:
        for record in _wandb_records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                runs.append((record.run.run_id, record.run.project, record.run.display_name))
            elif kind == "history":
                history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    assert runs == [(run_id, "specc", "run")] * 2
    for key in ("loss", "lr", "val_loss"):
        _same_history([(h["_step"], h[key]) for h in history if key in h], out, key)
    assert [h["_step"] for h in history] == [1, 2, 3, 4]
