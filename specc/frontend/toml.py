"""TOML front end: text → `RawSpec` with spans."""

from __future__ import annotations

import re
import sys

from specc.diagnostics import Diagnostic, Span, SpecError
from specc.frontend.limits import check_length
from specc.frontend.toml_spans import scan
from specc.raw import MAX_DEPTH, RawSpec, depth

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)|\(at end of document\)")
# tomllib's time and memory grow with the square of a dotted key's length, so such keys are refused first.
# The lookbehind makes each attempt start at a key's beginning, keeping the search linear.
_DEEP_KEY = re.compile(r"(?<![A-Za-z0-9_-])(?:(?:[A-Za-z0-9_-]+|\"[^\"\n]*\"|'[^'\n]*')[ \t]*\.[ \t]*){%d}" % MAX_DEPTH)
_LONG_INT = re.compile(r"[0-9][0-9_]{4000,}")
# Strings and comments, blanked before that search: dots inside them are no key's ("# see a.b.c" is fine).
_NOT_KEYS = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*')


def parse_toml(text: str, file: str) -> RawSpec:
    """Parse TOML `text` (read from `file`) into a `RawSpec`; errors are diagnostics."""
    check_length(text, file)
    deep = _DEEP_KEY.search(_NOT_KEYS.sub(_blank, text)) if text.count(".") >= MAX_DEPTH else None
    if deep:
        raise SpecError([Diagnostic("E001", f"dotted key nests deeper than {MAX_DEPTH} levels", _at(text, file, deep.start()))])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError([_syntax_diagnostic(err, text, file)]) from None
    except ValueError:  # Python refuses to convert integers of more than 4300 digits
        long = _LONG_INT.search(text)
        where = _at(text, file, long.start()) if long else Span(file, 1, 1)
        raise SpecError([Diagnostic("E001", "number literal is too long", where)]) from None
    except RecursionError:
        raise SpecError([Diagnostic("E001", "TOML nesting is too deep", Span(file, 1, 1))]) from None
    if depth(data) > MAX_DEPTH:
        raise SpecError([Diagnostic("E001", f"spec nests deeper than {MAX_DEPTH} levels", Span(file, 1, 1))])
    try:
        spans = scan(text, file)
    except RecursionError:  # pragma: no cover - tomllib fails first on such input
        raise SpecError([Diagnostic("E001", "TOML nesting is too deep", Span(file, 1, 1))]) from None
    return RawSpec(data, spans, file, {file: text})


def _blank(match: re.Match[str]) -> str:
    """A string or comment as a same-length run of `x` (newlines kept): offsets and lines stay put."""
    return re.sub(r"[^\n]", "x", match.group())


def _at(text: str, file: str, offset: int) -> Span:
    line_start = text.rfind("\n", 0, offset) + 1
    return Span(file, text.count("\n", 0, offset) + 1, offset - line_start + 1)


def _syntax_diagnostic(err: Exception, text: str, file: str) -> Diagnostic:
    message = str(err)
    line = getattr(err, "lineno", None)
    col = getattr(err, "colno", None)
    match = _POSITION.search(message)
    if line is None and match:
        if match.group(1):
            line, col = int(match.group(1)), int(match.group(2))
        else:
            line = text.count("\n") + 1
            col = len(text.rsplit("\n", 1)[-1]) + 1
    message = _POSITION.sub("", getattr(err, "msg", message)).strip()
    return Diagnostic("E001", f"TOML syntax error: {message}", Span(file, line or 1, col or 1))
