"""Experiment trackers a run reports its metrics to, as `[train] loggers` names them (none by default).

`metrics.jsonl` is always written; a tracker is switched on only by name, never
because its package happens to be installed. Each is the real library, an
optional extra: `tensorboard` (event files in ``<run>/tensorboard``), `mlflow`
(``MLFLOW_TRACKING_URI``, default a file store in ``<run>/mlruns``, allowed through
``MLFLOW_ALLOW_FILE_STORE`` unless that is set; one MLflow run per specc run, continued on resume) and `wandb` (project ``WANDB_PROJECT``,
default "specc"; ``WANDB_MODE=offline`` keeps it on disk; one W&B run per specc
run, continued on resume). A named tracker whose package is missing is an error
naming the extra, before anything is written.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from specc.runtime.errors import UserError

PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
ID_FILE = "tracker-{name}.id"  # the tracker's run id, so a resumed run continues the same tracked run


class Tracker(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def require(names: Sequence[str]) -> None:
    """Every named tracker's package is importable, or a `UserError` naming the extra to install."""
    for name in names:
        package = PACKAGES[name]
        if sys.modules.get(package) is None and importlib.util.find_spec(package) is None:
            raise UserError(f"[train] loggers names '{name}', but the {package} package is not installed: "
                            f"pip install 'specc[{name}]' (or remove it from loggers)")


def open_trackers(names: Sequence[str], run_dir: Path, resume_step: int) -> list[Tracker]:
    require(names)
    kinds: dict[str, Callable[[Path, int], Tracker]] = {"tensorboard": _TensorBoard, "mlflow": _MLflow, "wandb": _WandB}
    return [kinds[n](run_dir, resume_step) for n in names]


def _run_id(run_dir: Path, name: str) -> str | None:
    path = run_dir / ID_FILE.format(name=name)
    return path.read_text().strip() or None if path.exists() else None


def _keep_id(run_dir: Path, name: str, run_id: str) -> None:
    (run_dir / ID_FILE.format(name=name)).write_text(run_id)


class _TensorBoard:
    def __init__(self, run_dir: Path, resume_step: int):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events past the checkpoint, as the JSONL log does on resume.
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step or None)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, run_dir: Path, resume_step: int):
        self.mlflow: Any = importlib.import_module("mlflow")
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            # The run-local default is a file store, the one backend that needs no database package (mlflow-skinny
            # has none); MLflow 3 refuses it unless allowed. A user's own MLFLOW_ALLOW_FILE_STORE is left as set.
            uri = (run_dir / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.mlflow.set_tracking_uri(uri)
        self.mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "specc"))
        previous = _run_id(run_dir, "mlflow") if resume_step else None
        run = self.mlflow.start_run(run_id=previous) if previous else self.mlflow.start_run(run_name=run_dir.name)
        _keep_id(run_dir, "mlflow", run.info.run_id)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(metrics, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


class _WandB:
    def __init__(self, run_dir: Path, resume_step: int):
        wandb: Any = importlib.import_module("wandb")
        previous = _run_id(run_dir, "wandb") if resume_step else None
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "specc"), name=run_dir.name, dir=str(run_dir),
                              id=previous, resume="allow" if previous else None)
        _keep_id(run_dir, "wandb", self.run.id)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()
