"""The jobs behind `specc finetune`, `specc eval RUN --data FILE` and `specc predict`.

A fine-tuning run is an ordinary run directory: checkpoints carry the model
(only the part of the graph the task's head needs), the canonical spec, the
tokenizer (from the pretrained run) and ``task.json`` (the task's name and its
label set). Everything that can be wrong with the spec, the pretrained
checkpoint or the data is found before the run directory is created.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm import tqdm

from specc import jsonfile
from specc.atomic import write_text
from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph import LayerGraph, build_graph
from specc.graph.subgraph import subgraph
from specc.schema import ModelSpec, validate
from specc.runtime.runs import checkpoint
from specc.runtime import distributed
from specc.runtime.config import RunConfig, load_run_config
from specc.runtime.errors import UserError
from specc.runtime.data.labelled import Record, Splits, read_records
from specc.runtime.runs.lineage import stored_spec
from specc.runtime.device import pick_device
from specc.runtime.train.plot import write_loss_curve
from specc.runtime.objectives import ObjectiveSet
from specc.runtime.train.overrides import check_finetune_sets
from specc.runtime.train.session import Plan, tokenizer_for
from specc.runtime.tasks import TASK_FILE, DeclaredTask, TaskWorkload, choose_task, load_splits, resolve_tasks, score
from specc.runtime.tasks.base import Feature, TaskRunner
from specc.runtime.tasks.files import name_labels, read_split
from specc.runtime.data.tokenizer import TextTokenizer
from specc.runtime.train.trainer import Trainer, TrainResult
from specc.runtime.runs.transfer import (TransferReport, inspect_source, load_run_weights, lr_scales, source_checkpoint,
                                    stored_names)


@dataclass
class TaskSetup:
    """A spec's chosen task, with the graph cut down to what its head needs."""

    spec: ModelSpec
    graph: LayerGraph
    task: DeclaredTask
    config: RunConfig
    base: Path  # folder relative paths resolve against

    def plan(self) -> Plan:
        """What the generic trainer needs: the task's training settings (keeping the best checkpoint unless
        the task says otherwise), no pretraining objectives."""
        train = self.task.params.train
        if train.keep_best is None:
            train = train.model_copy(update={"keep_best": True})
        return Plan(self.spec, self.graph, dataclasses.replace(self.config, train=train), ObjectiveSet((), ""), self.base)


def task_setup(spec: ModelSpec, base: Path, name: str | None) -> TaskSetup:
    full = build_graph(spec)
    task = choose_task(resolve_tasks(spec, full), name, spec.name or spec.raw.file)
    return TaskSetup(spec, subgraph(full, [task.params.head]), task, load_run_config(spec), base)


@dataclass
class Evaluation:
    split: str
    metrics: dict[str, float]
    baseline: dict[str, float] | None = None
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    examples: int = 0


@dataclass
class FinetuneOutcome:
    run_dir: Path
    result: TrainResult
    evaluations: list[Evaluation]
    transfer: TransferReport | None


def finetune(spec_path: str, source: str | None = None, out: str | None = None, task_name: str | None = None,
             sets: Sequence[str] = (), search_paths: Sequence[str] = (), resume: str | None = None, random_init: bool = False,
             quiet: bool = False, say: Callable[[str], None] = print) -> FinetuneOutcome:
    """Fine-tune the spec's task from a pretrained run (or from scratch), then report its metrics
    (under torchrun every process trains on its share; rank 0 evaluates and reports)."""
    say = distributed.say_on_main(say)
    distributed.wait_for_leader()  # one process per machine reads the spec and fills the caches first
    spec = validate(parse(spec_path, sets, search_paths))
    setup = task_setup(spec, Path(spec_path).resolve().parent, task_name)
    task, params, plan = setup.task, setup.task.params, setup.plan()
    n_tasks = len(spec.sections.get("tasks") or {})
    run_dir = Path(resume or out or Path("runs") / ((spec.name or Path(spec_path).stem) + (f"-{task.name}" if n_tasks > 1 else "")))
    resume = resume or distributed.resume_after_restart(run_dir, say)
    if not resume and checkpoint.latest(run_dir) is not None:
        raise UserError(f"{run_dir} already holds a run; pass --resume {run_dir} to continue it, or --out elsewhere")
    origin = source or (str(_relative(params.from_, setup.base)) if params.from_ else None)
    if origin and not source and not resume and not Path(origin).exists():
        raise UserError(f"task '{task.name}' starts from {origin} (its `from`), which does not exist: pretrain it first "
                        f"(specc train ... --out {origin}), pass --from RUN, or --set tasks.{task.name}.from='\"\"' to start afresh")
    ckpt = source_checkpoint(origin) if origin and not resume else None
    if setup.graph.adapters is not None and not resume and (ckpt is None or random_init):
        raise UserError(f"{spec_path} declares [adapters], which train on top of pretrained weights: fine-tune from a "
                        "pretrained run (--from RUN or the task's `from`), without --random-init")
    # A resumed run keeps the tokenizer it started with: its [data] / [tokenizer] overrides are the ones it was started with.
    check_finetune_sets(sets, task.name, setup.graph, trains_tokenizer=bool(resume) or ckpt is None, from_given=bool(source))
    if resume:
        tok = TextTokenizer.load(checkpoint.require_latest(run_dir) / "tokenizer.json")
    elif ckpt is not None:
        tok = TextTokenizer.load(ckpt / "tokenizer.json")
    else:
        tok = tokenizer_for(plan, plan.corpus())
    transfer = inspect_source(ckpt, setup.graph, params.reinit) if ckpt is not None and not random_init else None

    splits = load_splits(task, setup.base)
    runner = _runner(setup, tok, splits.train)
    # Every split encoded once, with its gold answers: bad test data is found now, not after training, and the
    # same features give the loss and the predictions.
    train, val, test = (runner.encode(records, gold=True) for records in (splits.train, splits.validation, splits.test))
    scales = _scales(setup, transfer, checkpoint.require_latest(run_dir) if resume else None)
    files = {TASK_FILE: json.dumps({"task": task.name, "type": task.type.name, "labels": runner.labels,
                                    "source": str(ckpt) if ckpt else None, "random_init": random_init}, indent=1)}
    workload = TaskWorkload(task, runner, train, splits.validation, val, params.train, transfer, scales, files)

    say(f"specc finetune: task '{task.name}' ({task.type.name}) of {spec.name or spec_path} → {run_dir}")
    say(f"data: {splits.origin}: {len(splits.train)} train / {len(splits.validation)} validation / {len(splits.test)} test "
        f"examples" + (f"; labels {', '.join(runner.labels)}" if runner.labels else ""))
    for note in splits.notes:
        say(f"data: {note}")
    for line in runner.describe(splits.train, train):
        say(line)
    if transfer is not None:
        for line in transfer.lines():
            say(line)
    elif not resume:
        say("from random initialisation" + (f" (tokenizer of {ckpt})" if ckpt else " (tokenizer from the spec's [tokenizer])"))
    if setup.graph.adapters is not None:
        say(_trainable_line(setup.graph, scales))
    distributed.release_others()
    distributed.describe(params.train.parallel, say)
    trainer = Trainer(plan, run_dir, tok, resume=resume is not None, quiet=quiet, workload=workload)
    result = trainer.run()
    if not distributed.ranks().main:
        return FinetuneOutcome(run_dir, result, [], transfer)
    say(f"done: {result.steps} steps{result.resumed_note()} in {result.seconds:.1f} s"
        + (" — stopped early" if result.stopped_early else ""))
    say(write_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss.png"))

    scored, latest = checkpoint.best(run_dir), checkpoint.require_latest(run_dir)
    if scored != latest:
        say(f"scoring the best checkpoint, {scored.name} ({task.monitor} {result_best(scored)})")
    model = _scored_model(setup.graph, trainer.live, scored, latest, params.train.device)
    # The trainer's last evaluation predicted the validation split with these very weights (the live model at the
    # step it evaluated, which is the scored checkpoint): its predictions are the final ones, and its calibration stands.
    reused = workload.predictions if trainer.live is not None and scored == latest and result.val_step == result.steps else None
    # validation first: what the runner tunes on it (a no-answer threshold) then applies to the test split
    evaluations = [evaluate_records(runner, task, model, records, name, splits.train, quiet, calibrate=name == "validation",
                                    features=features, predictions=reused if name == "validation" else None)
                   for name, records, features in (("validation", splits.validation, val), ("test", splits.test, test))
                   if records]
    for k, v in runner.state().items():
        say(f"tuned on validation: {k} = {v}")
    report = render(evaluations, runner.baseline_name)
    say(report)
    (run_dir / "eval.json").write_text(json.dumps(_as_json(task, evaluations), indent=1))
    return FinetuneOutcome(run_dir, result, evaluations, transfer)


def result_best(ckpt: Path) -> str:
    value = checkpoint.load_state(ckpt).best_val
    return "?" if value is None else f"{value:.4f}"


def _relative(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() or p.exists() else Path(os.path.normpath(base / p))


def _runner(setup: TaskSetup, tok: TextTokenizer, train: Sequence[Record], labels: list[str] | None = None) -> TaskRunner:
    task = setup.task
    runner_cls = task.type.runner
    if labels is None and runner_cls.label_set:
        labels = runner_cls.labels_from(task.params, train)
    if labels is not None:
        node = setup.graph.outputs[task.params.head]
        width = setup.graph.shape_of(node)[-1]
        if width != len(labels):
            raise UserError(f"task '{task.name}': the training data has {len(labels)} labels ({', '.join(labels[:10])}) but "
                            f"head '{task.params.head}' gives {width} scores; set its num_labels = {len(labels)} or declare labels")
    return runner_cls(task.name, task.params, setup.graph, tok, labels)


def _scales(setup: TaskSetup, transfer: TransferReport | None, resumed: Path | None) -> dict[str, float] | None:
    """Learning-rate multiplier per parameter (0 freezes). With adapters, a base parameter trains only when
    the pretrained run lacks it (a new head) or a `train` pattern names it; on resume, the ones the run stored."""
    p, adapters = setup.task.params, setup.graph.adapters
    if not p.freeze and p.layer_decay == 1.0 and p.head_lr is None and adapters is None:
        return None
    scales = lr_scales(setup.graph, p.train.lr, p.freeze, p.layer_decay, p.head_lr, transfer.new if transfer else [])
    if adapters is not None:
        trained = stored_names(resumed) if resumed is not None else set(transfer.new if transfer else [])
        for name in scales:
            if name not in trained and not adapters.trains_in_full(name):
                scales[name] = 0.0
    return scales


def _trainable_line(graph: LayerGraph, scales: dict[str, float] | None) -> str:
    assert graph.adapters is not None
    lora = sum(math.prod(s) for s in graph.adapters.parameter_names().values())
    shapes = graph.parameter_names()
    full = sum(math.prod(s) for n, s in shapes.items() if scales is None or scales.get(n, 1.0) != 0)
    frozen = sum(math.prod(s) for s in shapes.values()) - full
    return (f"LoRA rank {graph.adapters.lora.rank} on {len(graph.adapters.layers)} layers: trainable {lora + full:,} "
            f"(adapters {lora:,}, in full {full:,}), frozen {frozen:,}")


def _scored_model(graph: LayerGraph, live: torch.nn.Module | None, scored: Path, latest: Path, device: str) -> torch.nn.Module:
    """The model that holds the scored checkpoint's weights: the trained one itself when they are its latest
    (its own), else those weights loaded into it; compiled afresh only when there is none (under torchrun)."""
    if live is None:
        return _load(graph, scored, device)
    if scored != latest:
        load_run_weights(scored, live, graph)
    return live.eval()


def _load(graph: LayerGraph, ckpt: Path, device: str = "auto") -> torch.nn.Module:
    model = compile_model(graph, pick_device(device), init=False)
    load_run_weights(ckpt, model, graph)
    return model.eval()


def evaluate_records(runner: TaskRunner, task: DeclaredTask, model: torch.nn.Module, records: Sequence[Record], split: str,
                     train: Sequence[Record] | None = None, quiet: bool = True, calibrate: bool = False,
                     features: Sequence[Feature] | None = None, predictions: Sequence[dict[str, Any]] | None = None
                     ) -> Evaluation:
    """Metrics of the model on `records` (and of the trivial baseline when the training records are given);
    with `calibrate`, the runner first tunes its decision settings on these records (the validation split).
    `features`: the records' features when they are encoded already (with or without gold answers).
    `predictions`: this model's predictions of `records` when they are made already (already calibrated on):
    nothing is predicted again."""
    golds = [runner.gold(r) for r in records]  # a record without its gold answer fails here, before any work
    if predictions is not None:
        preds = list(predictions)
    else:
        if features is None:
            features = runner.encode(records, gold=False)
        with tqdm(total=len(records), disable=quiet, desc=f"eval {split}", leave=False) as bar:
            preds = runner.predict(model, records, features, next(model.parameters()).device, bar.update)
        if calibrate:
            runner.calibrate(preds, records)
    values = [runner.value(p) for p in preds]
    metrics = score(runner, task.metrics, values, golds)
    baseline = score(runner, task.metrics, runner.baseline(train, records), golds) if train else None
    return Evaluation(split, metrics, baseline, runner.notes(values, golds), len(records))


def render(evaluations: Sequence[Evaluation], baseline_name: str) -> str:
    """A table: one row per metric, a column per split, and the baseline's numbers beside them."""
    if not evaluations:
        return "no examples to evaluate"
    head = ["metric"] + [f"{e.split} ({e.examples})" for e in evaluations]
    head += [f"baseline {e.split}" for e in evaluations if e.baseline is not None]
    rows = []
    for m in evaluations[0].metrics:
        cells = [m] + [_fmt(e.metrics[m]) for e in evaluations]
        cells += [_fmt(e.baseline[m]) for e in evaluations if e.baseline is not None]
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + rows]
    if any(e.baseline is not None for e in evaluations):
        lines.append(f"baseline: {baseline_name}")
    for e in evaluations:
        lines += [f"{k} ({e.split}): {v}" for k, v in e.notes.items()]
    return "\n".join(lines)


def _fmt(v: float) -> str:
    v = round(v, 4) + 0.0  # no "-0.0000"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def _as_json(task: DeclaredTask, evaluations: Sequence[Evaluation]) -> dict[str, Any]:
    return {"task": task.name, "type": task.type.name,
            **{e.split: {"examples": e.examples, "metrics": e.metrics, "baseline": e.baseline, **e.notes} for e in evaluations}}


# -- runs: eval and predict ------------------------------------------------------------------------
@dataclass
class TaskRun:
    setup: TaskSetup
    runner: TaskRunner
    model: torch.nn.Module
    ckpt: Path


def is_task_run(run_dir: str | Path) -> bool:
    ckpt = checkpoint.latest(Path(run_dir))
    return ckpt is not None and (ckpt / TASK_FILE).exists()


def load_task_run(run_dir: str | Path, device: str = "auto", step: int | None = None, last: bool = False) -> TaskRun:
    """A fine-tuned run's checkpoint (of `step`, the latest with `last`, else the best): its task, label set,
    tokenizer and model."""
    path = Path(run_dir)
    if not path.exists():
        raise UserError(f"run directory not found: {path}")
    ckpt = checkpoint.chosen(path, step, last)
    if not (ckpt / TASK_FILE).exists():
        raise UserError(f"{ckpt} is not a fine-tuned run (no {TASK_FILE}); use `specc finetune` to make one")
    info = jsonfile.read(ckpt / TASK_FILE, "a fine-tuned run's task")
    if not isinstance(info, dict) or not isinstance(info.get("task"), str) or not isinstance(info.get("labels"), (list, type(None))):
        raise UserError(f"cannot read {ckpt / TASK_FILE}: expected an object with a task name and a label list")
    spec = stored_spec(ckpt)
    base = Path(checkpoint.load_state(ckpt).base or ckpt)
    setup = task_setup(spec, base if base.exists() else ckpt, info["task"])
    tok = TextTokenizer.load(ckpt / "tokenizer.json")
    runner = _runner(setup, tok, [], info.get("labels"))
    runner.restore(info)
    return TaskRun(setup, runner, _load(setup.graph, ckpt, device), ckpt)


def _announce(run: TaskRun) -> None:
    distributed.note(checkpoint.describe(run.ckpt))


def evaluate_run(run_dir: str, data: str | None = None, split: str = "validation", as_json: bool = False,
                 say: Callable[[str], None] = print, step: int | None = None, last: bool = False) -> Evaluation:
    """A fine-tuned run's metrics on a labelled file (fields as the task declares), or on one of its own splits
    (of its best checkpoint, unless `step` or `last` choose another)."""
    run = load_task_run(run_dir, step=step, last=last)
    _announce(run)
    task = run.setup.task
    if data is not None:
        table = read_split(str(Path(data).resolve()), task.params.data, Path.cwd())
        records = table.records
        if not as_json:
            for note in table.notes:
                say(f"data: {note}")
        name = Path(data).name
    else:
        splits: Splits = load_splits(task, run.setup.base)
        records = {"validation": splits.validation, "test": splits.test, "train": splits.train}[split]
        if not records:
            raise UserError(f"task '{task.name}' has no {split} split")
        name = split
    result = evaluate_records(run.runner, task, run.model, records, name, quiet=as_json)
    say(json.dumps({"task": task.name, "data": name, "examples": result.examples, **result.metrics, **result.notes})
        if as_json else render([result], run.runner.baseline_name))
    return result


def predict(run_dir: str, input_path: str, output: str | None = None, quiet: bool = False,
            say: Callable[[str], None] = print, step: int | None = None, last: bool = False) -> int:
    """Predictions for every record of a JSONL or plain-text file, written as JSONL (stdout without `output`),
    by the run's best checkpoint unless `step` or `last` choose another."""
    run = load_task_run(run_dir, step=step, last=last)
    if not quiet:
        _announce(run)
    task = run.setup.task
    fields = task.params.data
    text_field = str(getattr(fields, "text", None) or getattr(fields, "source", None) or getattr(fields, "tokens", "text"))
    records = name_labels(read_records(Path(input_path), "auto", text_field), fields)
    if task.type.name == "token_classification":  # plain text: words are whitespace-separated
        records = [Record({**r.fields, fields.tokens: r.fields[fields.tokens].split()}, r.where)
                   if isinstance(r.fields.get(fields.tokens), str) else r for r in records]
    if not records:
        raise UserError(f"{input_path}: the file holds no examples")
    features = run.runner.encode(records, gold=False)
    device = next(run.model.parameters()).device
    with tqdm(total=len(records), disable=quiet, desc="predict", file=sys.stderr) as bar:
        preds = run.runner.predict(run.model, records, features, device, bar.update)
    lines = [json.dumps({**r.fields, **p}, ensure_ascii=False) for r, p in zip(records, preds)]
    if output is None:
        for line in lines:
            say(line)
    else:
        out = Path(output)
        write_text(out, "".join(line + "\n" for line in lines))
        if not quiet:
            print(f"{len(lines)} predictions → {out}", file=sys.stderr)
    return len(lines)
