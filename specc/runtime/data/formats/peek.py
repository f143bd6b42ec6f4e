"""A data file's first record without reading the file: what `specc check` compares a task's fields with.

`first_record` reads a CSV/TSV header row, or a JSONL file's first non-blank
line, and nothing after it (the line is decoded alone: a text reader would
decode a whole buffer ahead); a CSV/TSV with declared columns and a plain-text
file have their fields by declaration, and are not read at all. A format with
no peeker here (SQuAD, CoNLL, Parquet, datasets folders, whose fields the
reader or a schema gives) returns None: `specc finetune` reads it whole and
reports a missing field at its record.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from specc.runtime.errors import UserError
from specc.runtime.data.formats import format_of
from specc.runtime.data.formats.compression import decoding, open_binary
from specc.runtime.data.formats.record import ReadOptions, Record
from specc.runtime.data.formats.tables import jsonl_record

Peeker = Callable[[Path, ReadOptions], Record | None]


def first_record(path: Path, fmt: str = "auto", opts: ReadOptions = ReadOptions()) -> Record | None:
    """A record holding the fields every record of the file has (values are not meaningful for a header), or
    None (an empty file, or a format without a peeker). A missing file or a first line that is not valid is a
    `UserError` worded as the full reader words it."""
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    peeker = PEEKERS.get(format_of(path, fmt))
    if peeker is None or path.is_dir():
        return None
    with decoding(path, lambda err: f"{path}: the first record is not UTF-8 text ({err.reason})"):
        return peeker(path, opts)


def _first_line(path: Path, skip_blank: bool) -> tuple[int, str] | None:
    with open_binary(path) as fh:
        for n, raw in enumerate(fh, 1):
            if raw.strip() or not skip_blank:
                return n, raw.decode("utf-8-sig" if n == 1 else "utf-8")  # a leading BOM is no field name's
    return None


def _jsonl(path: Path, opts: ReadOptions) -> Record | None:
    first = _first_line(path, skip_blank=True)
    if first is None:
        return None
    n, line = first
    return jsonl_record(path, n, line)


def _delimited(kind: str) -> Peeker:
    def peek(path: Path, opts: ReadOptions) -> Record | None:
        if opts.columns is not None:
            return Record(dict.fromkeys(opts.columns, ""), f"{path} (data.columns)")
        first = _first_line(path, skip_blank=False)
        if first is None:
            return None
        lines = [first[1]]
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE) if kind == "tsv" else csv.reader(lines)
        try:
            header = next(reader)
        except csv.Error as err:
            raise UserError(f"{path}:1: {err}") from None
        return Record(dict.fromkeys(header, ""), f"{path}:1")
    return peek


# format → how to see its records' fields cheaply; a new format's reader may add its peeker here
PEEKERS: dict[str, Peeker] = {
    "jsonl": _jsonl,
    "csv": _delimited("csv"),
    "tsv": _delimited("tsv"),
    "text": lambda path, opts: Record({opts.text_field: ""}, str(path)),
}
