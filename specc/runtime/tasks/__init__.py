"""Tasks: the registry, the ``[tasks.NAME]`` tables a spec declares, and their data.

`resolve_tasks` validates every declared task against the registry and the
architecture (with spans, at `specc check` time). `load_splits` reads a task's
examples (files or a built-in demo), and `TaskWorkload` plugs a task into the
generic trainer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from specc.lazy import lazy_import
from specc.diagnostics import Collector, did_you_mean
from specc.graph import LayerGraph
from specc.schema import ModelSpec
from specc.runtime.config import (TrainConfig, check_checkpointing, check_lr_scale, check_precision, held_out_every,
                                   unmatched_patterns)
from specc.runtime.errors import UserError
from specc.runtime.data.demos import DEMOS
from specc.runtime.tasks.metrics import METRICS
from specc.runtime.batch import Batch, LossSums
from specc.runtime.section import validate_section
from specc.runtime.tasks.base import TASKS, Feature, ParallelFiles, TaskRunner, TaskType, epoch_index

if TYPE_CHECKING:
    import torch

    from specc.runtime.data.labelled import Record, Splits
    from specc.runtime.runs.transfer import TransferReport
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")

TASK_FILE = "task.json"  # a fine-tuned checkpoint's task: its name, labels, and what was tuned on validation

__all__ = ["TASKS", "DeclaredTask", "TaskWorkload", "resolve_tasks", "choose_task", "load_splits", "score"]


@dataclass(frozen=True)
class DeclaredTask:
    name: str
    type: TaskType
    params: Any  # the type's TaskParams subclass

    @property
    def metrics(self) -> list[str]:
        return list(self.params.metrics or self.type.runner.metrics_for(self.params))

    @property
    def monitor(self) -> str:
        return self.params.monitor or self.metrics[0]


def resolve_tasks(spec: ModelSpec, graph: LayerGraph) -> dict[str, DeclaredTask]:
    """Every ``[tasks.NAME]`` table, validated; all mistakes raised together as a `SpecError`."""
    raw = spec.raw
    declared: Mapping[str, Any] = spec.sections.get("tasks") or {}
    diags = Collector()
    out: dict[str, DeclaredTask] = {}
    for name, table in declared.items():
        where = ("tasks", name)
        span = raw.key_span(where)
        if not isinstance(table, dict):
            diags.error("E014", f"'tasks.{name}' must be a table", raw.value_span(where))
            continue
        kind = table.get("type")
        ttype = TASKS.get(kind) if isinstance(kind, str) else None
        if ttype is None:
            diags.error("E070", f"task '{name}' has {'unknown type ' + repr(kind) if kind else 'no type'}",
                        raw.value_span(where + ("type",)) if kind else span,
                        (TASKS.hint(kind) if isinstance(kind, str) else None) or f"known: {', '.join(sorted(TASKS))}")
            continue
        params = validate_section(ttype.params, table, spec, where, diags)
        if params is None:
            continue
        task = DeclaredTask(name, ttype, params)
        if params.head not in graph.outputs:
            diags.error("E071", f"task '{name}' reads head '{params.head}', which is not an output of the model",
                        raw.value_span(where + ("head",)), did_you_mean(params.head, graph.outputs) or
                        f"outputs: {', '.join(graph.outputs)}; declare the head under [model.outputs]")
        else:
            diags.extend(ttype.runner.check(params, graph, lambda key: raw.value_span(where + (key,)) or span))
        for m in task.metrics:
            metric = METRICS.get(m)
            if metric is None or metric.kind != ttype.runner.kind:
                fits = [k for k, v in METRICS.items() if v.kind == ttype.runner.kind]
                diags.error("E077", f"metric '{m}' does not apply to {kind} (its metrics: {', '.join(fits)})",
                            raw.value_span(where + ("metrics",)), did_you_mean(m, fits))
        if params.monitor is not None and params.monitor not in task.metrics:
            diags.error("E077", f"monitor '{params.monitor}' is not one of the task's metrics", raw.value_span(where + ("monitor",)))
        _check_data(task, DEMOS, raw, diags)
        limit = graph.max_positions()
        if limit is not None and params.max_len > limit:
            diags.error("E080", f"max_len {params.max_len} exceeds the model's {limit} positions",
                        raw.value_span(where + ("max_len",)) or span)
        diags.extend(check_checkpointing(params.train, graph, raw.value_span(where + ("train", "activation_checkpointing"))))
        diags.extend(check_precision(params.train, raw.value_span(where + ("train", "precision"))))
        diags.extend(check_lr_scale(params.train, graph, raw.value_span(where + ("train", "lr_scale"))
                                    or raw.key_span(where + ("train",)) or span))
        diags.extend(unmatched_patterns("E081", "freeze", params.freeze, graph, raw.value_span(where + ("freeze",))))
        out[name] = task
    diags.raise_if_any()
    return out


def _check_data(task: DeclaredTask, demos: Mapping[str, Any], raw: Any, diags: Collector) -> None:
    d = task.params.data
    where = ("tasks", task.name, "data")
    if d.demo is not None:
        demo = demos.get(d.demo)
        if demo is None:
            diags.error("E078", f"unknown demo data set '{d.demo}'", raw.value_span(where + ("demo",)),
                        did_you_mean(d.demo, demos) or f"known: {', '.join(sorted(demos))}")
        elif demo.task_type != task.type.name:
            diags.error("E078", f"demo '{d.demo}' is {demo.task_type} data, but task '{task.name}' is {task.type.name}",
                        raw.value_span(where + ("demo",)))
        if d.train or d.validation or d.test:
            diags.error("E079", "declare either demo data or files, not both", raw.key_span(where))
    elif d.train is None:
        diags.error("E079", f"task '{task.name}' declares no training data", raw.key_span(where) or raw.key_span(where[:2]),
                    "set data.train = \"path\" (JSONL, CSV/TSV or SQuAD JSON), or data.demo = \"NAME\"")
    for split in ("train", "validation", "test"):
        if isinstance(getattr(d, split), ParallelFiles) and task.type.name != "translation":
            diags.error("E079", f"a {{src_file, tgt_file}} pair is parallel text, for translation; task '{task.name}' is "
                        f"{task.type.name}", raw.value_span(where + (split,)), "point the split at one file")


def choose_task(tasks: Mapping[str, DeclaredTask], name: str | None, spec_name: str) -> DeclaredTask:
    if not tasks:
        raise UserError(f"{spec_name} declares no [tasks.NAME] table to fine-tune")
    if name is None:
        if len(tasks) > 1:
            raise UserError(f"{spec_name} declares several tasks ({', '.join(tasks)}); pick one with --task NAME")
        return next(iter(tasks.values()))
    if name not in tasks:
        hint = did_you_mean(name, tasks)
        raise UserError(f"no task '{name}' in {spec_name} (tasks: {', '.join(tasks)})" + (f"; {hint}" if hint else ""))
    return tasks[name]


# -- data ---------------------------------------------------------------------------
def load_splits(task: DeclaredTask, base: Path) -> Splits:
    """The task's train / validation / test records; an empty or unreadable split is a `UserError`."""
    from specc.runtime.data.labelled import Splits  # here, not at the top: it imports every file-format reader
    from specc.runtime.tasks.files import read_split

    d = task.params.data
    if d.demo is not None:
        splits = DEMOS[d.demo].build()
        splits.train = splits.train[: d.max_train] if d.max_train else splits.train
        return splits

    notes: list[str] = []

    def read(split: str | ParallelFiles) -> list[Record]:
        table = read_split(split, d, base)
        notes.extend(table.notes)
        return table.records

    assert d.train is not None
    train = read(d.train)
    if d.validation is not None:
        validation = read(d.validation)
    else:  # every k-th training example is held out, deterministically
        every = held_out_every(d.val_fraction)
        validation = [r for i, r in enumerate(train) if i % every == every - 1]
        train = [r for i, r in enumerate(train) if i % every != every - 1]
        if not validation:
            raise UserError(f"{_name(d.train)}: too few examples to hold out a validation split; declare data.validation")
        notes.append(f"validation: every {every}th training example held out ({len(validation)})")
    if d.max_train and len(train) > d.max_train:
        notes.append(f"train: the first {d.max_train} of {len(train)} examples used (data.max_train)")
        train = train[: d.max_train]
    test = read(d.test) if d.test is not None else []
    return Splits(train, validation, test, ", ".join(_name(p) for p in (d.train, d.validation, d.test) if p), notes)


def _name(split: str | ParallelFiles) -> str:
    return f"{split.src_file} + {split.tgt_file}" if isinstance(split, ParallelFiles) else split


def score(runner: TaskRunner, metrics: Sequence[str], values: Sequence[Any], golds: Sequence[Any]) -> dict[str, float]:
    return {m: float(METRICS[m].fn(values, golds)) for m in metrics}


# -- the workload the trainer runs ----------------------------------------------------
class TaskWorkload:
    """A task as the trainer's `Workload`: shuffled training features, validation loss and metrics (every
    split encoded once, with its gold answers: the same features give the loss and the predictions)."""

    def __init__(self, task: DeclaredTask, runner: TaskRunner, train: Sequence[Feature], val_records: Sequence[Record],
                 val: Sequence[Feature], cfg: TrainConfig, transfer: TransferReport | None, scales: dict[str, float] | None,
                 files: dict[str, str]):
        self.task, self.runner, self.cfg = task, runner, cfg
        self.train, self.val_records, self.val = list(train), list(val_records), list(val)
        self.transfer, self.scales, self._files = transfer, scales, files
        self.monitor = f"val_{task.monitor}"
        self.higher_is_better = METRICS[task.monitor].higher_is_better
        self._perm: dict[int, Any] = {}
        # The latest evaluation's predictions of the validation records: the final report reuses them when it
        # scores the same weights, rather than predicting (for translation, beam searching) the split again.
        self.predictions: list[dict[str, Any]] | None = None

    def batch(self, first: int, size: int) -> Batch:
        rows = [self.train[epoch_index(k, len(self.train), self.cfg.seed, self._perm)] for k in range(first, first + size)]
        return self.runner.collate(rows)

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        return self.runner.loss(outputs, batch, sums)

    def evaluate(self, model: torch.nn.Module, device: torch.device, cfg: TrainConfig) -> dict[str, float]:
        """Validation loss and metrics from the features encoded once (with their gold answers), in float32;
        a task that reads its predictions off the head gets both from one forward pass per batch."""
        from specc.runtime.device import perplexity  # torch's side: not needed to resolve a task

        was_training = model.training
        model.eval()  # beam search too runs without dropout
        sums, preds = self.runner.loss_and_predictions(model, self.val_records, self.val, device)
        model.train(was_training)
        self.runner.calibrate(preds, self.val_records)  # e.g. SQuAD v2.0's no-answer threshold, tuned on validation
        self.predictions = preds
        values = [self.runner.value(p) for p in preds]
        golds = [self.runner.gold(r) for r in self.val_records]
        means = sums.means()
        out = {"val_loss": sum(means.values())}
        if "lm" in means:  # sequence to sequence: the target's perplexity under teacher forcing
            out["val_ppl"] = perplexity(means["lm"])
        return {**out, **{f"val_{k}": v for k, v in score(self.runner, self.task.metrics, values, golds).items()}}

    def start(self, model: torch.nn.Module) -> None:
        if self.transfer is not None:
            from specc.runtime.runs.transfer import load_matching  # safetensors: not needed to resolve a task

            load_matching(model, self.transfer)

    def lr_scales(self, model: torch.nn.Module) -> dict[str, float] | None:
        return self.scales

    def files(self) -> dict[str, str]:
        """Files each checkpoint holds: the task's, with what the runner tuned on validation so far."""
        state = self.runner.state()
        if not state or TASK_FILE not in self._files:
            return self._files
        return {**self._files, TASK_FILE: json.dumps({**json.loads(self._files[TASK_FILE]), **state}, indent=1)}

    def weights_base(self) -> Path | None:
        return self.transfer.source if self.transfer is not None else None
