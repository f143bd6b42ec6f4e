"""Labelled examples for tasks: JSONL, CSV/TSV (GLUE-style, a header row), SQuAD v1.1 JSON, plain text.

Every record remembers where it was read (``file:line``, or a JSON path for
SQuAD), so a missing field or an unknown label is reported at its place, and
every problem is found before training starts.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from specc.runtime.errors import UserError

Format = Literal["auto", "jsonl", "csv", "tsv", "squad", "text"]
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".json": "squad", ".txt": "text"}


@dataclass(frozen=True)
class Record:
    """One example's fields, and where it came from."""

    fields: dict[str, Any]
    where: str  # "path:line", "path: data[0].paragraphs[1].qas[2]", "demo sentiment, train #3"

    def get(self, name: str, kind: type | tuple[type, ...] | None = None, what: str = "") -> Any:
        """The field `name`; a clear error naming the record's place if it is missing or of the wrong kind."""
        if name not in self.fields:
            known = ", ".join(sorted(self.fields)) or "none"
            raise UserError(f"{self.where}: missing field '{name}' (fields here: {known})")
        value = self.fields[name]
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool) and bool not in _tuple(kind)):
            raise UserError(f"{self.where}: field '{name}' must be {what or _kind_name(kind)}, got {json.dumps(value)[:60]}")
        return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


def format_of(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: cannot tell the data format from the suffix '{path.suffix}'; "
                        f"name files .jsonl, .csv, .tsv, .json (SQuAD) or .txt, or declare format = \"...\"")
    return fmt


def read_records(path: Path, fmt: str = "auto", text_field: str = "text") -> list[Record]:
    """Every record of a data file; a missing file, bad JSON or a ragged CSV row is a `UserError`."""
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    kind = format_of(path, fmt)
    try:
        if kind == "jsonl":
            return list(_jsonl(path))
        if kind in ("csv", "tsv"):
            return list(_delimited(path, kind))
        if kind == "squad":
            return list(_squad(path))
        return [Record({text_field: line.rstrip("\n")}, f"{path}:{n}")
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
    except UnicodeDecodeError as err:
        raise UserError(f"{_first_bad_line(path)}: not UTF-8 text ({err.reason})") from None


def _first_bad_line(path: Path) -> str:
    """``path:line:column`` of the first bytes that are not UTF-8 (a text reader's offsets are per buffer)."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"{path}:{n}:{err.start + 1}"
    return str(path)


def _jsonl(path: Path) -> Iterable[Record]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{n}:{err.colno}: invalid JSON: {err.msg}") from None
            if not isinstance(value, dict):
                raise UserError(f"{path}:{n}: each line must be a JSON object, got {type(value).__name__}")
            yield Record(value, f"{path}:{n}")


def _delimited(path: Path, kind: str) -> Iterable[Record]:
    """CSV with quoting, or GLUE-style TSV (tab-separated, no quoting); the first row names the fields."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if kind == "tsv" else csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise UserError(f"{path}:1: {err}") from None
        line = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise UserError(f"{path}:{reader.line_num}: {err}") from None
            where = f"{path}:{line + 1}"
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise UserError(f"{where}: {len(row)} columns, but the header names {len(header)}")
            yield Record(dict(zip(header, row)), where)


def _squad(path: Path) -> Iterable[Record]:
    """SQuAD v1.1: one record per question, with fields id, question, context, answers (text, answer_start)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UserError(f"{path}: not SQuAD JSON (expected an object with a 'data' list)")
    for i, article in enumerate(doc["data"]):
        for j, para in enumerate(_items(article, "paragraphs", f"{path}: data[{i}]")):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str):
                raise UserError(f"{where}: missing field 'context'")
            for k, qa in enumerate(_items(para, "qas", where)):
                if not isinstance(qa, dict):
                    raise UserError(f"{where}.qas[{k}]: each question must be an object")
                yield Record({"id": qa.get("id", f"{i}.{j}.{k}"), "question": qa.get("question"), "context": context,
                              "answers": qa.get("answers", [])}, f"{where}.qas[{k}]")


def _items(value: Any, key: str, where: str) -> list[Any]:
    items = value.get(key) if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise UserError(f"{where}: missing list '{key}'")
    return items
