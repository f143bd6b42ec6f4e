"""One labelled example's fields, and where it was read (the unit every format reader yields)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from specc.runtime.errors import UserError


@dataclass(frozen=True)
class Record:
    """One example's fields, and where it came from."""

    fields: dict[str, Any]
    where: str  # "path:line", "path: data[0].paragraphs[1].qas[2]", "path: row 7", "demo sentiment, train #3"

    def get(self, name: str, kind: type | tuple[type, ...] | None = None, what: str = "") -> Any:
        """The field `name` (a dotted path such as ``translation.en`` reads into nested objects); a clear
        error naming the record's place if it is missing or of the wrong kind."""
        value = self._lookup(name)
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool) and bool not in _tuple(kind)):
            raise UserError(f"{self.where}: field '{name}' must be {what or _kind_name(kind)}, got {json.dumps(value)[:60]}")
        return value

    def has(self, name: str) -> bool:
        try:
            self._lookup(name)
        except UserError:
            return False
        return True

    def _lookup(self, name: str) -> Any:
        if name in self.fields:  # a flat key that happens to hold a dot wins over a path
            return self.fields[name]
        value: Any = self.fields
        walked: list[str] = []
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                at = ".".join(walked)
                here = value if isinstance(value, dict) else {}
                known = ", ".join(sorted(here)) or "none"
                inside = f" inside '{at}'" if at else ""
                raise UserError(f"{self.where}: missing field '{name}' (fields here{inside}: {known})")
            value = value[part]
            walked.append(part)
        return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


@dataclass(frozen=True)
class ReadOptions:
    """What a reader needs beyond the file: declared column names (a headerless CSV/TSV, CoNLL columns),
    the field names a task reads (so a header row that names none of them is caught at line 1), and the
    field plain-text lines go to."""

    columns: tuple[str, ...] | None = None
    needs: tuple[str, ...] = ()
    text_field: str = "text"


@dataclass
class Table:
    """A file's records, and what the reader decided or passed over, one line each (said before training)."""

    records: list[Record]
    notes: list[str]
