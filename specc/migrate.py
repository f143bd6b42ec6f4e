"""Spec format versions and the migrations between them.

A `Migration` upgrades a spec from one format version to the next. It says
what to change as a list of `Edit`s computed from the spec's data, so one
definition serves both places an old spec turns up: a checkpoint's stored
``spec.json`` (edited as data) and a file in a repository (edited as text by
`specc upgrade`, in place, with every comment and line kept: an edit replaces
exactly the characters of the key or value it concerns).

Format 0 is a spec written before the format key existed; the 0 → 1 migration
is the one shipped so far.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Union

from specc.diagnostics import Diagnostic, SpecError
from specc.frontend import parse_text
from specc.raw import RawSpec
from specc.schema.model import FORMAT_VERSION

Path = tuple[str, ...]


@dataclass(frozen=True)
class SetValue:
    """Set `path` to a scalar (adding a top-level key when it is missing)."""

    path: Path
    value: Union[bool, int, float, str]


@dataclass(frozen=True)
class RenameKey:
    """Rename the last key of `path` to `new` (the key must be written in one place)."""

    path: Path
    new: str


Edit = Union[SetValue, RenameKey]


@dataclass(frozen=True)
class Migration:
    source: int  # upgrades format `source` to `source + 1`
    summary: str
    edits: Callable[[dict[str, Any]], list[Edit]]


MIGRATIONS: dict[int, Migration] = {}


def register(migration: Migration) -> Migration:
    assert migration.source not in MIGRATIONS, f"two migrations from format {migration.source}"
    MIGRATIONS[migration.source] = migration
    return migration


register(Migration(0, "declare the format version (`format = 1`), which format-0 specs lacked",
                   lambda data: [SetValue(("format",), 1)]))


def version_of(data: dict[str, Any]) -> int | None:
    """The spec's format version (0 when it has none); None when it is not a version number."""
    value = data.get("format", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def pending(data: dict[str, Any]) -> list[Migration]:
    """The migrations that take `data` to the current format, in order (empty if it is current or unknown)."""
    version = version_of(data)
    found: list[Migration] = []
    while version is not None and version < FORMAT_VERSION and version in MIGRATIONS:
        found.append(MIGRATIONS[version])
        version += 1
    return found if version == FORMAT_VERSION else []


# -- data -------------------------------------------------------------------------------------
def upgrade_data(data: dict[str, Any]) -> tuple[dict[str, Any], list[Migration]]:
    """A copy of a spec tree at the current format, and the migrations applied."""
    out = copy.deepcopy(data)
    applied = pending(out)
    for migration in applied:
        for edit in migration.edits(out):
            _apply_data(out, edit)
        out["format"] = migration.source + 1
    return out, applied


def _apply_data(data: dict[str, Any], edit: Edit) -> None:
    *parents, last = edit.path
    node = data
    for key in parents:
        node = node[key]
    if isinstance(edit, SetValue):
        node[last] = edit.value
    else:
        node[edit.new] = node.pop(last)


# -- text -------------------------------------------------------------------------------------
def upgrade_text(text: str, file: str) -> tuple[str, list[Migration]]:
    """The spec text at the current format, edited in place; comments, order and layout are kept."""
    applied: list[Migration] = []
    raw = parse_text(text, file)
    for migration in pending(raw.data):
        edits = migration.edits(raw.data)
        if not any(isinstance(e, SetValue) and e.path == ("format",) for e in edits):
            edits.append(SetValue(("format",), migration.source + 1))
        text = _apply_text(text, raw, edits)
        raw = parse_text(text, file)
        applied.append(migration)
    return text, applied


def _apply_text(text: str, raw: RawSpec, edits: list[Edit]) -> str:
    lines = text.splitlines(keepends=True)
    changes: list[tuple[int, int, int, str]] = []  # (line index, start col, end col, replacement), 0-based cols
    inserts: list[str] = []
    for edit in edits:
        if isinstance(edit, SetValue):
            span = raw.spans.values.get(edit.path)
            if span is None:
                if len(edit.path) != 1:
                    raise _cannot(raw, edit, "it adds a key inside a table")
                inserts.append(f"{edit.path[0]} = {_literal(edit.value)}\n")
                continue
            changes.append((span.line - 1, span.col - 1, span.end_col - 1, _literal(edit.value)))
        else:
            span = raw.spans.keys.get(edit.path)
            below = [p for p in raw.spans.keys if p[: len(edit.path)] == edit.path and len(p) > len(edit.path)
                     and raw.spans.keys[p].line != (span.line if span else -1)]
            if span is None or below:
                raise _cannot(raw, edit, "the key is written in more than one place")
            written = "".join(lines[span.line - 1])[span.col - 1: span.end_col - 1]
            start = written.rfind(".") + 1  # a dotted key: only its last part is renamed
            changes.append((span.line - 1, span.col - 1 + start, span.end_col - 1, edit.new))
    for index, start, end, new in sorted(changes, reverse=True):  # right to left keeps earlier columns valid
        line = lines[index]
        lines[index] = line[:start] + new + line[end:]
    if inserts:
        at = _after_leading_comments(lines)
        if at < len(lines) and lines[at].lstrip().startswith("["):
            inserts.append("\n")  # keep a blank line before the first table
        lines[at:at] = inserts
    return "".join(lines)


def _after_leading_comments(lines: list[str]) -> int:
    """Index of the first line that is not a comment or blank line at the top of the file."""
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            return i
    return len(lines)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"no TOML literal for {value}")
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _cannot(raw: RawSpec, edit: Edit, why: str) -> SpecError:
    span = raw.key_span(edit.path) or raw.file_span()
    return SpecError([Diagnostic("E090", f"cannot upgrade this spec in place: {why}", span,
                                 f"make the change by hand: {edit}")])

