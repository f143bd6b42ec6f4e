"""`specc data inspect`: what a spec's data looks like once read, before any training.

For a task: the examples of each split and what the readers decided or passed
over, three parsed examples, the label distribution, token-length percentiles
of every model input and how many examples `max_len` cuts (QA: how many
questions are split into several windows). For a pretraining spec: the files
read and passed over, documents per split, three documents and their lengths.
Reading encodes every record, so a bad one is named (``FILE:LINE``) here too.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from specc.frontend import parse
from specc.schema import validate
from specc.runtime.data.labelled import Record
from specc.runtime.train.session import plan, tokenizer_for
from specc.runtime.tasks import load_splits
from specc.runtime.tasks.base import TaskRunner
from specc.runtime.data.tokenizer import TextTokenizer
from specc.runtime.runs.transfer import source_checkpoint

PERCENTILES = (50, 90, 95, 99, 100)


def inspect(spec_path: str, task_name: str | None = None, sets: Sequence[str] = (), search_paths: Sequence[str] = (),
            say: Callable[[str], None] = print) -> None:
    spec = validate(parse(spec_path, sets, search_paths))
    base = Path(spec_path).resolve().parent
    if "tasks" in spec.sections:
        _task(spec, base, task_name, say)
    else:
        _corpus(plan(spec, base), say)


def _task(spec: Any, base: Path, task_name: str | None, say: Callable[[str], None]) -> None:
    from specc.runtime.train.finetune import _relative, _runner, task_setup

    setup = task_setup(spec, base, task_name)
    task, params = setup.task, setup.task.params
    splits = load_splits(task, base)
    say(f"task '{task.name}' ({task.type.name}) of {spec.name or spec.raw.file}: data {splits.origin}")
    for note in splits.notes:
        say(f"  {note}")
    origin = _relative(params.from_, base) if params.from_ else None
    if origin is not None and origin.exists():
        tok = TextTokenizer.load(source_checkpoint(str(origin)) / "tokenizer.json")
        say(f"tokenizer: of {origin}")
    else:
        p = setup.plan()
        tok = tokenizer_for(p, p.corpus())
        say("tokenizer: trained from the spec's [tokenizer] and [data]" + (f" ({origin} does not exist yet)" if origin else ""))
    runner = _runner(setup, tok, splits.train)
    wide = _runner_without_limits(runner)
    for name, records in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        if records:
            _split(name, records, runner, wide, say)


def _split(name: str, records: Sequence[Record], runner: TaskRunner, wide: TaskRunner, say: Callable[[str], None]) -> None:
    say(f"\n{name}: {len(records)} examples")
    for r in records[:3]:
        say(f"  {r.where}: {_short(r.fields)}")
    runner.encode(records, gold=True)  # every bad record is found here, at its place
    _labels(records, runner, say)
    _lengths(records, runner, wide, say)


def _short(fields: dict[str, Any], width: int = 160) -> str:
    text = json.dumps(fields, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _labels(records: Sequence[Record], runner: TaskRunner, say: Callable[[str], None]) -> None:
    golds = [runner.gold(r) for r in records]
    if runner.kind in ("labels", "tags"):
        counts = collections.Counter(g for gold in golds for g in (gold if isinstance(gold, list) else [gold]))
        total = sum(counts.values())
        what = "labels" if runner.kind == "labels" else "tags (per word)"
        say(f"  {what}: " + ", ".join(f"{k} {n} ({100 * n / total:.1f}%)" for k, n in counts.most_common()))
    elif runner.kind == "values":
        v = np.asarray(golds, dtype=float)
        say(f"  values: min {v.min():.4g}, mean {v.mean():.4g}, max {v.max():.4g}")
    elif runner.kind == "answers":
        none = sum(1 for g in golds if not g)
        say(f"  answers: {len(golds) - none} answerable, {none} unanswerable")


def _lengths(records: Sequence[Record], runner: TaskRunner, wide: TaskRunner, say: Callable[[str], None]) -> None:
    """Token lengths of each model input as the examples are written (before any cut), against their limits."""
    full = wide.encode(records, gold=True)
    limits = _limits(runner)
    by_input: dict[str, list[int]] = collections.defaultdict(list)
    for f in full:
        for key, ids in f.inputs.items():
            if key in limits:
                by_input[key].append(len(ids))
    for key, lengths in by_input.items():
        values = np.asarray(lengths)
        pct = ", ".join(f"p{q} {int(np.percentile(values, q))}" for q in PERCENTILES[:-1]) + f", max {values.max()}"
        limit, what = limits[key]
        over = int((values > limit).sum())
        say(f"  '{key}' length in tokens: {pct}; {over} of {len(values)} ({100 * over / len(values):.1f}%) longer than {limit} ({what})")


def _limits(runner: TaskRunner) -> dict[str, tuple[int, str]]:
    p = runner.params
    if runner.kind == "answers":
        return {"tokens": (p.max_len, "max_len: split into windows doc_stride apart")}
    if runner.kind == "text":
        if getattr(runner, "decoder_only", False):
            return {"tokens": (p.max_len + p.max_target_len, "max_len + max_target_len: cut")}
        return {"src": (p.max_len, "max_len: cut"), "tgt": (p.max_target_len, "max_target_len: cut")}
    return {"tokens": (p.max_len, "max_len: cut")}


def _runner_without_limits(runner: TaskRunner) -> TaskRunner:
    """The same task with no length limit, so an example's full length can be measured."""
    huge = 1 << 30
    update = {k: huge for k in ("max_len", "max_target_len", "max_query_len") if hasattr(runner.params, k)}
    if "doc_stride" in type(runner.params).model_fields:
        update["doc_stride"] = huge
    params = runner.params.model_copy(update=update)
    return type(runner)(runner.name, params, runner.graph, runner.tok, runner.labels)


def _corpus(p: Any, say: Callable[[str], None]) -> None:
    corpus = p.corpus()
    say(f"corpus of {p.spec.name or p.spec.raw.file}: source {p.config.data.source}" +
        (f", {p.config.data.path}" if p.config.data.path else ""))
    for line in corpus.listing().lines() if p.config.data.source != "default" else []:
        say(f"  {line}")
    for split in ("train", "val"):
        docs = list(corpus.documents(split))
        say(f"\n{split}: {len(docs)} documents")
        for d in docs[:3]:
            say(f"  {_short({'text': d})}")
        if docs:
            chars = np.asarray([len(d) for d in docs])
            say("  characters: " + ", ".join(f"p{q} {int(np.percentile(chars, q))}" for q in PERCENTILES[:-1]) +
                f", max {chars.max()}")
