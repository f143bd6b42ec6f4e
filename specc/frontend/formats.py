"""`fmt` and `convert` on spec text: parse one file (no `extends`), print it canonically.

Both work on the file as written: `extends` stays a key, nothing is merged or
evaluated, so converting back and forth gives the same `RawSpec` data, and
formatting twice gives the same text. Comments are pinned to keys and put back
(`comments`); numbers keep their spelling (`1e-5`, `3e-3`) when the target
form reads it back as the same value.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specc.diagnostics import Diagnostic, Origin, Span, SpecError
from specc.frontend import spelling
from specc.frontend.comments import Pinned, dsl_comments, pin, render, toml_comments
from specc.frontend.dsl import parse_dsl_document, reads_number
from specc.frontend.print_dsl import dsl_lines
from specc.frontend.print_toml import toml_lines
from specc.frontend.toml import parse_toml
from specc.raw import Path as KeyPath, RawSpec
from specc.version import SPEC_FORMATS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

FORMATS = SPEC_FORMATS


@dataclass
class Document:
    """A spec file's tree, its comments pinned to keys, and its source (for number spellings)."""

    raw: RawSpec
    comments: list[Pinned]


def suffix_of(file: str) -> str:
    suffix = Path(file).suffix
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise SpecError([Diagnostic("E003", f"unknown spec format '{suffix}' (known: {known})", Span(file))])
    return suffix


def read_document(text: str, file: str) -> Document:
    if suffix_of(file) == ".toml":
        raw = parse_toml(text, file)
        return Document(raw, pin(toml_comments(text), raw))
    doc = parse_dsl_document(text, file)
    return Document(doc.raw, pin(dsl_comments(text), doc.raw, doc.ends))


def write_document(doc: Document, suffix: str, keep_columns: bool = False) -> str:
    """`doc` as canonical text of the form `suffix` (".toml" or ".spec")."""
    source = doc.raw.sources.get(doc.raw.file, "").split("\n")

    def spelled(path: KeyPath, value: Any) -> str | None:
        return _kept_spelling(doc.raw, source, path, value, suffix)

    if suffix == ".toml":
        lines = toml_lines(doc.raw.data, spelled)
    else:
        lines = dsl_lines(doc.raw.data, spelled, doc.raw.file)
    return render(lines, list(doc.comments), keep_columns)


def format_text(text: str, file: str) -> str:
    """The canonical form of spec `text` in its own format (by `file`'s suffix)."""
    return write_document(read_document(text, file), suffix_of(file), keep_columns=True)


def convert_text(text: str, file: str, to_suffix: str) -> str:
    """Spec `text` (format by `file`'s suffix) written in the format `to_suffix`."""
    suffix_of("x" + to_suffix)
    return write_document(read_document(text, file), to_suffix)


def _kept_spelling(raw: RawSpec, lines: list[str], path: KeyPath, value: Any, suffix: str) -> str | None:
    """How the number at `path` was written, if the target form reads that back as the same value."""
    span = raw.spans.values.get(path)
    if span is None or span.file != raw.file or span.origin is not Origin.FILE or span.line <= 0:
        return None
    if span.line > len(lines) or span.end_col <= span.col:
        return None
    text = lines[span.line - 1][span.col - 1 : span.end_col - 1].strip()
    if not spelling.DECIMAL.match(text):
        return None
    if suffix == ".toml":
        try:
            back = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return None
    else:
        back = reads_number(text)
    return text if spelling.same_value(back, value) else None
