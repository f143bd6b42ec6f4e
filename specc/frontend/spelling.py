"""How scalars are spelled in spec text: strings, keys, numbers and expressions.

Shared by the DSL front end and by the printers (`specc fmt`, `specc convert`),
so a value is written back exactly the way a front end reads it. Strings use
TOML's basic-string escapes in both forms.
"""

from __future__ import annotations

import math
import re

DSL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
TOML_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
# A decimal number as people write it; other spellings (hex, `+1`, `inf`) are normalised.
DECIMAL = re.compile(r"-?[0-9][0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9]+)?\Z")

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
# Characters other tools treat as line breaks (str.splitlines does): escaped, so a printed line stays one line.
_LINE_BREAKS = frozenset("\x85\u2028\u2029")
_UNESCAPES = {'"': '"', "\\": "\\", "b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r"}


def quote(text: str) -> str:
    """`text` as a double-quoted string that both TOML and the DSL read back unchanged."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in _LINE_BREAKS:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class EscapeError(ValueError):
    """A bad escape in a quoted string; `offset` is where it starts in the literal."""

    def __init__(self, message: str, offset: int, width: int):
        super().__init__(message)
        self.message, self.offset, self.width = message, offset, width


def unquote(literal: str) -> str:
    """The text of a double-quoted literal (quotes included), resolving escapes."""
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        kind = body[i + 1]
        if kind in _UNESCAPES:
            out.append(_UNESCAPES[kind])
            i += 2
            continue
        size = {"u": 4, "U": 8}.get(kind)
        digits = body[i + 2 : i + 2 + size] if size else ""
        if size is None or len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise EscapeError(f"invalid escape '\\{kind}' in string", i + 1, 2)
        code = int(digits, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise EscapeError(f"'\\{kind}{digits}' is not a Unicode character", i + 1, size + 2)
        out.append(chr(code))
        i += 2 + size
    return "".join(out)


def float_text(value: float) -> str:
    """Shortest exact spelling of a float, valid in TOML and the DSL (`1e-5`, `0.1`, `inf`)."""
    if math.isnan(value):
        return "-nan" if math.copysign(1, value) < 0 else "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    mantissa, sep, exponent = text.partition("e")
    if sep:
        sign = "-" if exponent.startswith("-") else ""
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def number_text(value: int | float) -> str:
    return str(value) if isinstance(value, int) else float_text(value)


def same_value(a: object, b: object) -> bool:
    """Equal and of the same type (so `1` is not `1.0` and `true` is not `1`); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b):
        return math.copysign(1, a) == math.copysign(1, b)
    return a == b


# -- canonical expressions ---------------------------------------------------------
# Precedence levels of the expression grammar (`specc/expr.lark`): a child is
# parenthesised only when the grammar needs it, so the spelling is canonical.
SUM, PRODUCT, UNARY, POWER, ATOM = 1, 2, 3, 4, 5
BINARY = {"add": ("+", SUM), "sub": ("-", SUM), "mul": ("*", PRODUCT), "div": ("/", PRODUCT),
          "floordiv": ("//", PRODUCT), "mod": ("%", PRODUCT), "pow": ("**", POWER)}


def binary(op: str, left: tuple[str, int], right: tuple[str, int]) -> tuple[str, int]:
    """Canonical text and precedence of `left op right`, each given as (text, precedence)."""
    symbol, level = BINARY[op]
    # `**` is right-associative and takes an atom on its left; the others are left-associative.
    need_left, need_right = (ATOM, UNARY) if op == "pow" else (level, level + 1)
    return f"{_wrap(left, need_left)} {symbol} {_wrap(right, need_right)}", level


def negate(operand: tuple[str, int]) -> tuple[str, int]:
    return "-" + _wrap(operand, UNARY), UNARY


def _wrap(part: tuple[str, int], need: int) -> str:
    text, level = part
    return text if level >= need else f"({text})"
