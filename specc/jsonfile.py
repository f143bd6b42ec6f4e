"""The one JSON reader of every command: bounded depth, bounded numbers, no lone surrogates.

Python's `json` parses whatever it is given: an array nested 100,000 deep is a
`RecursionError` (and one nested 900 deep parses, then breaks the code that
walks it), a 5,000-digit integer a `ValueError` from `int`, and a string holding
a lone surrogate (``"\\ud800"``) parses into text that no file or terminal can
encode. Files come from elsewhere (run folders, Hugging Face folders, data), so
`parse` refuses all three with a `BadJSON` that says which, and `read` names
the file. Nesting is checked on the parsed value without recursion; numbers as
they are parsed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from specc.diagnostics import UserError

MAX_DEPTH = 64  # our files nest at most ~8 deep, Hugging Face's ~6
MAX_INT_DIGITS = 40  # past any count, id, size or seed (2**128 has 39 digits)
MAX_FLOAT_CHARS = 100  # a float's text; a longer literal is padding, not precision
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadJSON(ValueError):
    """Text that is not JSON, or JSON past the bounds above; the message says which, without a file. `line` and
    `column` place a syntax error (None otherwise)."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None):
        super().__init__(reason)
        self.line, self.column = line, column


def parse(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The value of one JSON text, checked as the module docstring says."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as err:
        raise BadJSON(err.msg, err.lineno, err.colno) from None
    except RecursionError:
        raise BadJSON(f"nested more than {max_depth} deep") from None
    except UnicodeDecodeError as err:
        raise BadJSON(f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    _check(value, max_depth)
    return value


def read(path: Path, what: str = "", max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON file; a missing, unreadable or malformed file is a `UserError` naming it (and `what`
    it should be, e.g. "a run's training state")."""
    try:
        text = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        return parse(text, max_depth)
    except BadJSON as err:
        where = f" at line {err.line} column {err.column}" if err.line else ""
        kind = "not valid JSON: " if err.line else ""
        raise UserError(f"cannot read {path}{f' ({what})' if what else ''}: {kind}{err}{where}") from None


def read_object(path: Path, what: str = "", max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """`read`, for a file that must hold a JSON object."""
    value = read(path, what, max_depth)
    if not isinstance(value, dict):
        raise UserError(f"cannot read {path}{f' ({what})' if what else ''}: expected a JSON object, found {kind(value)}")
    return value


def place(path: Path, line: int | None, err: BadJSON) -> str:
    """``FILE:LINE[:COL]`` of a bad JSON value read from line `line` of `path` (one value a line, as in JSONL)."""
    return f"{path}:{line}" + (f":{err.column}" if err.column else "")


def kind(value: Any) -> str:
    """A JSON value's kind, in words, for messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadJSON(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise BadJSON(f"a number written in {len(text)} characters (at most {MAX_FLOAT_CHARS})")
    return float(text)


def _check(value: Any, max_depth: int) -> None:
    """Depth and strings of a parsed value, walked with a stack (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _text(item)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise BadJSON(f"nested more than {max_depth} deep")
            if isinstance(item, dict):
                for key in item:
                    _text(key)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def _text(text: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise BadJSON("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text")
