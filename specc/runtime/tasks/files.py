"""A task's data files as records: the declared format and columns, parallel file pairs, label ids named.

`read_split` reads one declared split (a file, a `datasets` folder, or a
``{src_file, tgt_file}`` pair) into a `Table`; integer label ids become names
through ``data.label_names`` (the `datasets` readers already name them from
the dataset's own features).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specc.runtime.errors import UserError
from specc.runtime.data.formats import ReadOptions, Record, Table, parallel, read_table
from specc.runtime.tasks.base import ParallelFiles, TaskData


def resolve(path: str, base: Path) -> Path:
    return Path(path) if Path(path).is_absolute() else base / path


def read_split(split: str | ParallelFiles, d: TaskData, base: Path) -> Table:
    """The records of one declared split; an empty split is a `UserError` naming its file."""
    if isinstance(split, ParallelFiles):
        src, tgt = resolve(split.src_file, base), resolve(split.tgt_file, base)
        fields = d.reads()
        table = parallel(src, tgt, *(fields if len(fields) == 2 else ("src", "tgt")))
        where = f"{src} + {tgt}"
    else:
        file = resolve(split, base)
        opts = ReadOptions(tuple(d.columns) if d.columns else None, d.reads())
        table = read_table(file, d.format, opts)
        where = str(file)
    if not table.records:
        raise UserError(f"{where}: the file holds no examples")
    return Table(name_labels(table.records, d), table.notes)


def name_labels(records: list[Record], d: TaskData) -> list[Record]:
    """Records whose label field holds integer ids, with the ids replaced by `d.label_names` (unchanged without them)."""
    field = d.label_field()
    names = d.label_names
    if field is None or names is None:
        return records
    return [_named(r, field, names) for r in records]


def _named(record: Record, field: str, names: list[str]) -> Record:
    if field not in record.fields:
        return record  # the task reports a missing field at its own time (a prediction input needs none)
    value = record.fields[field]
    named: Any
    if isinstance(value, list):
        named = [_name(v, names, record, f"{field}[{k}]") for k, v in enumerate(value)]
    else:
        named = _name(value, names, record, field)
    return Record({**record.fields, field: named}, record.where)


def _name(value: Any, names: list[str], record: Record, what: str) -> Any:
    if isinstance(value, str) and value.lstrip("-").isdigit():  # a CSV/TSV cell holds the id as text
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    if not 0 <= value < len(names):
        raise UserError(f"{record.where}: {what} is label id {value}, outside data.label_names (ids 0..{len(names) - 1})")
    return names[value]
