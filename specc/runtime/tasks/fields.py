"""`specc check` of a task's data files: every record field the task reads must be in each file.

Only a CSV/TSV file's header row or a JSONL file's first record is read
(`specc.runtime.data.formats.peek`), so a check stays cheap on any corpus; a later
record that lacks a field is reported by `specc finetune`, which reads every
record, at that record's line. The fields come from the task types' own data
records (`TaskData.reads`), so a new task type or data key is checked with no
change here, and a new file format by adding its peeker.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.raw import RawSpec
from specc.schema import ModelSpec
from specc.runtime.errors import UserError
from specc.runtime.tasks import DeclaredTask, resolve_tasks
from specc.runtime.tasks.base import ParallelFiles, TaskData

if TYPE_CHECKING:
    from specc.runtime.data.formats import Record

SPLITS = ("train", "validation", "test")


def check_data_fields(spec: ModelSpec, graph: LayerGraph, base: Path) -> list[Diagnostic]:
    """E085 for a data file that cannot be read, E086 for a field the task reads that a file's header or first
    record lacks; paths are relative to `base` (the spec's folder)."""
    return [d for task in resolve_tasks(spec, graph).values() for d in _task_files(task, spec.raw, base)]


def record_fields(data: TaskData) -> dict[str, str]:
    """The task's own data keys that name a field it reads: key → field name (``source`` → ``"src"``)."""
    reads = set(data.reads())
    own = [k for k in type(data).model_fields if k not in TaskData.model_fields]
    return {k: getattr(data, k) for k in own if isinstance(getattr(data, k), str) and getattr(data, k) in reads}


def _task_files(task: DeclaredTask, raw: RawSpec, base: Path) -> list[Diagnostic]:
    data = task.params.data
    if data.demo is not None:
        return []
    # Here, for a task that reads files: the formats package imports every reader.
    from specc.runtime.data.formats import ReadOptions
    from specc.runtime.data.formats.peek import first_record
    from specc.runtime.tasks.files import resolve

    where = ("tasks", task.name, "data")
    opts = ReadOptions(tuple(data.columns) if data.columns else None, data.reads())
    out = []
    for split in SPLITS:
        value = getattr(data, split)
        span = raw.value_span(where + (split,))
        if isinstance(value, ParallelFiles):  # line-aligned plain text: its fields are the task's own, by construction
            out += [Diagnostic("E085", f"data file not found: {resolve(name, base)}", span)
                    for name in (value.src_file, value.tgt_file) if not resolve(name, base).is_file()]
            continue
        if value is None:
            continue
        try:
            record = first_record(resolve(value, base), data.format, opts)
        except UserError as err:
            out.append(Diagnostic("E085", str(err), span))
            continue
        if record is not None:
            out += _missing(task, record, raw, span)
    return out


def _missing(task: DeclaredTask, record: Record, raw: RawSpec, split_span: Span | None) -> list[Diagnostic]:
    """E086 for each field the task reads that `record` (a header, or the first record) does not hold."""
    data = task.params.data
    keys = {name: key for key, name in record_fields(data).items()}
    fields = list(record.fields)
    out = []
    for name in data.reads():
        if record.has(name):
            continue
        key = keys.get(name)
        close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
        setting = f"tasks.{task.name}.data.{key or 'KEY'}"
        fix = f'set {setting} = "{close[0]}"' if close else f"set {setting} to the file's field that holds it"
        written = raw.spans.values.get(("tasks", task.name, "data", key)) if key else None
        out.append(Diagnostic("E086", f"{record.where}: the file has no field '{name}'"
                              + (f" (the task's data.{key})" if key else "") + f"; its fields: {', '.join(fields) or 'none'}",
                              written or split_span, fix))
    return out
