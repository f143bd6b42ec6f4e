"""Diagnostics: the one way every stage reports a user's mistake.

A `Span` points into a source file; a `Diagnostic` is a code, a message, an
optional span and an optional hint. A stage collects diagnostics and raises a
single `SpecError` holding all of them, which the CLI renders as
``file:line:col: error[CODE]: message`` plus the source line and a caret.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable, Sequence


class Origin(str, Enum):
    """Where a value came from, so diagnostics and `specc explain` can say so."""

    FILE = "file"
    BASE = "base file"
    CLI = "command line"
    DEFAULT = "default"


@dataclass(frozen=True)
class Span:
    """A place in a source: 1-based line and column; `end_col` is exclusive."""

    file: str
    line: int = 0
    col: int = 0
    end_col: int = 0
    origin: Origin = Origin.FILE

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"

    def describe(self) -> str:
        """Location plus provenance, e.g. ``base.toml:3:9 (base file)``."""
        if self.origin is Origin.FILE:
            return str(self)
        return f"{self} ({self.origin.value})"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"

    def as_dict(self) -> dict[str, object]:
        """For editors and CI annotators (`specc check --json`): lines and columns are 1-based, `end` exclusive."""
        span = self.span
        where: dict[str, object] = {"file": span.file if span else None, "range": None}
        if span is not None and span.line > 0:
            end = span.end_col if span.end_col > span.col else span.col + 1
            where["range"] = {"start": {"line": span.line, "column": span.col}, "end": {"line": span.line, "column": end}}
        origin = span.origin.value if span is not None else None
        return {**where, "severity": self.severity, "code": self.code, "message": self.message, "hint": self.hint,
                "origin": origin}

    def render(self, source: str | None = None) -> str:
        """Text for a person: header, source line with caret, hint."""
        where = f"{self.span}: " if self.span else ""
        lines = [f"{where}{self.severity}[{self.code}]: {self.message}"]
        snippet = _snippet(self.span, source)
        if snippet:
            lines.append(snippet)
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)


class SpecError(Exception):
    """One or more diagnostics from a stage; raised once the stage has collected all."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        assert diagnostics, "SpecError needs at least one diagnostic"
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    def render(self, sources: dict[str, str] | None = None) -> str:
        read: dict[str, str | None] = dict(sources or {})  # each file read once, not once per diagnostic in it
        return "\n".join(d.render(_source_for(d.span, read)) for d in self.diagnostics)


class UserError(Exception):
    """A mistake outside any spec text (a missing data file, a bad flag value): printed, no traceback."""


@dataclass
class Collector:
    """Accumulates diagnostics during a stage; `raise_if_any` ends the stage."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span | None = None, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, hint))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(in_source_order(self.items))


def in_source_order(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics sorted by file (in order of first mention), line and column; unplaced ones first per file."""
    files: dict[str, int] = {}
    for d in diagnostics:
        files.setdefault(d.span.file if d.span else "", len(files))
    return sorted(diagnostics, key=lambda d: (files[d.span.file], d.span.line, d.span.col) if d.span else (-1, 0, 0))


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest known choice, or None if nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _source_for(span: Span | None, sources: dict[str, str | None]) -> str | None:
    """The text of the file `span` is in, from `sources` or read from disk (and kept there for the next one)."""
    if span is None or span.line <= 0:
        return None
    if span.file not in sources:
        try:
            sources[span.file] = Path(span.file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            sources[span.file] = None
    return sources[span.file]


def _snippet(span: Span | None, source: str | None) -> str | None:
    if span is None or source is None or span.line <= 0:
        return None
    lines = source.split("\n")  # TOML's lines: str.splitlines would also split at \f, \x1c, \u2028, ...
    if span.line > len(lines):
        return None
    text = lines[span.line - 1].removesuffix("\r")
    if len(text) > 200:  # keep pathological one-line inputs readable
        start = max(0, span.col - 80)
        text, col = text[start : start + 160], span.col - start
    else:
        col = span.col
    # One printable character per source character, so the caret stays aligned and the terminal safe.
    text = "".join(" " if ch == "\t" else "\ufffd" if ord(ch) < 32 or 127 <= ord(ch) < 160 else ch for ch in text)
    width = max(1, (span.end_col - span.col) if span.end_col > span.col else 1)
    width = min(width, max(1, len(text) - col + 1))
    gutter = f"{span.line:>4} | "
    caret = " " * (len(gutter) + max(col - 1, 0)) + "^" * width
    return f"{gutter}{text}\n{caret}"
