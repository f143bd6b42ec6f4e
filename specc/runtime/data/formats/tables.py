"""Line-oriented labelled data: JSONL, CSV (quoted) and GLUE-style TSV, plain text (one example a line).

A CSV/TSV file either starts with a header row naming its columns, or has its
columns declared (``data.columns``), in which case every row is an example.
Which of the two was used is said in the reader's notes, and a header row that
names none of the fields the task reads is an error at line 1: a headerless
file must never lose its first example to a header silently.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Iterator

from specc import jsonfile
from specc.runtime.errors import UserError
from specc.runtime.data.formats.compression import open_binary, open_text
from specc.runtime.data.formats.record import ReadOptions, Record, Table


def jsonl(path: Path, opts: ReadOptions) -> Table:
    """One JSON object per line (the shape `datasets` exports: nested objects and lists are kept as they are)."""
    records, blank = [], 0
    with open_text(path) as fh:
        for n, line in bounded_lines(fh, path):
            if not line.strip():
                blank += 1
                continue
            records.append(jsonl_record(path, n, line))
    return Table(records, [f"{path}: {blank} blank line{'s' * (blank != 1)} passed over"] if blank else [])


def delimited(path: Path, kind: str, opts: ReadOptions) -> Table:
    """CSV with quoting, or TSV (tab-separated, no quoting, as GLUE ships it)."""
    with open_text(path) as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if kind == "tsv" else csv.reader(fh)
        rows = list(_rows(reader, path))
    if not rows:
        return Table([], [])
    notes: list[str] = []
    if opts.columns is not None:
        header, body = list(opts.columns), rows
        notes.append(f"{path}: no header row; columns as declared: {', '.join(header)}")
    else:
        (_, header), body = rows[0], rows[1:]
        _check_header(path, header, opts)
        notes.append(f"{path}:1: first row read as the header: {', '.join(header)} "
                     f"(a file without one declares data.columns)")
    records = []
    for line, row in body:
        if len(row) != len(header):
            what = "declared columns" if opts.columns is not None else "header"
            raise UserError(f"{path}:{line}: {len(row)} columns, but the {what} name{'s' * (len(header) != 1)} {len(header)}")
        records.append(Record(dict(zip(header, row)), f"{path}:{line}"))
    return Table(records, notes)


def _rows(reader: Iterator[list[str]], path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every non-blank row; a quoting error is reported at its line."""
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise UserError(f"{path}:{reader.line_num}: {err}") from None  # type: ignore[attr-defined]
        start, line = line, reader.line_num + 1  # type: ignore[attr-defined]
        if any(cell.strip() for cell in row):
            yield start, row


def _check_header(path: Path, header: list[str], opts: ReadOptions) -> None:
    """A first row that names none of the fields the task reads is data, not a header: say so at line 1."""
    tops = [n.split(".")[0] for n in opts.needs]
    if tops and not any(n in header for n in tops):
        shown = ", ".join(repr(c[:30]) for c in header[:4])
        raise UserError(f"{path}:1: the first row ({shown}) is read as the header, but it names none of the fields the "
                        f"task reads ({', '.join(opts.needs)}); if the file has no header row, declare "
                        f"data.columns = [...] with one name per column")
    if len(set(header)) != len(header):
        raise UserError(f"{path}:1: the header row names a column twice ({', '.join(header)})")


def text_lines(path: Path, opts: ReadOptions) -> Table:
    """One example per non-blank line, in the field `opts.text_field`."""
    with open_text(path) as fh:
        records = [Record({opts.text_field: line.rstrip("\r\n")}, f"{path}:{n}") for n, line in bounded_lines(fh, path)
                   if line.strip()]
    return Table(records, [])


MAX_LINE_CHARS = 64 << 20  # a task's line longer than this is refused before it is read whole


def bounded_lines(fh: IO[str], path: Path, limit: int = MAX_LINE_CHARS) -> Iterator[tuple[int, str]]:
    """(line number, line) of an open text file; a line of more than `limit` characters is a `FILE:LINE` error
    raised once `limit` are read (a task keeps `max_len` tokens of a text: one line must not take gigabytes)."""
    for n, line in enumerate(iter(lambda: fh.readline(limit + 1), ""), 1):
        if len(line) > limit and not line.endswith("\n"):
            raise UserError(f"{path}:{n}: a line of more than {limit:,} characters (task data holds at most "
                            f"{limit >> 20} Mi characters a line)")
        yield n, line


def first_bad_line(path: Path) -> str:
    """``path:line:column`` of the first bytes that are not UTF-8 (a text reader's offsets are per buffer)."""
    with open_binary(path) as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"{path}:{n}:{err.start + 1}"
    return str(path)


def jsonl_record(path: Path, n: int, line: str) -> Record:
    """Line `n` of a JSONL file as a record; anything but a JSON object is a `FILE:LINE` error."""
    try:
        value = jsonfile.parse(line.rstrip("\r\n"))
    except jsonfile.BadJSON as err:
        raise UserError(f"{jsonfile.place(path, n, err)}: invalid JSON: {err}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}:{n}: each line must be a JSON object, got {type(value).__name__}")
    return Record(value, f"{path}:{n}")
