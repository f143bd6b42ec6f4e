"""Safe arithmetic expressions for spec parameters (``4 * d_model``).

Parsed with a lark grammar (`expr.lark`) and evaluated by walking the tree:
no Python `eval`, no attribute access, only a fixed set of pure functions.
Integer division must be exact; sizes stay within bounds so that an
expression bomb (``2 ** 2 ** 2 ** 64``) is an error, not a hang.

The result contract: every value an expression (or any part of it) takes is an
int within +-2**63, a finite float, or a bool. Anything else (a complex number
from a negative base to a fractional power, inf from an overflow, an integer
too large) is an `ExprError` located at the part of the expression that made it.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Union

from specc.lazy import lazy_import

if TYPE_CHECKING:
    import lark
    from lark import Token, Tree
else:  # imported on the first parse: `specc ops` reaches this module through the schema and parses nothing
    lark = lazy_import("lark")

Number = Union[int, float, bool]
MAX_INT = 2**63 - 1
MAX_LENGTH = 500
MAX_NESTING = 50


class ExprError(Exception):
    """A user-facing expression mistake; `code` is the diagnostic code.

    `column` (1-based, within the expression text) and `width` locate the part
    at fault when one part is (an unknown name, an unexpected character).
    """

    def __init__(self, code: str, message: str, hint: str | None = None, column: int | None = None, width: int = 1):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint
        self.column, self.width = column, width


GRAMMAR = Path(__file__).parent / "expr.lark"


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    """The LALR parser: loaded from its tables in `specc/expr_tables.py` (a few ms) when they were made from this
    `expr.lark`, else built from the grammar (tens of ms, at every start of `specc check`)."""
    from specc import expr_tables

    text = GRAMMAR.read_text()
    if expr_tables.GRAMMAR_SHA256 == hashlib.sha256(text.encode()).hexdigest():
        return lark.Lark.load(expr_tables.TABLES)
    return _build(text)


def _build(grammar: str) -> lark.Lark:
    # positions: an error inside an expression points at the sub-expression that caused it
    return lark.Lark(grammar, parser="lalr", maybe_placeholders=False, propagate_positions=True)


def write_tables(out: Path = Path(__file__).parent / "expr_tables.py") -> None:
    """Regenerate `specc/expr_tables.py` from `expr.lark` (``python -m specc.expr``): plain literals, imported
    like any module, so no data is loaded as code (tests/test_expr.py checks the tables are current)."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    text = GRAMMAR.read_text()
    data, memo = _build(text).memo_serialize([TerminalDef, Rule])
    out.write_text('"""The expression parser\'s LALR tables, generated from specc/expr.lark by `python -m specc.expr`:\n'
                   'do not edit. `specc.expr` uses them only while GRAMMAR_SHA256 is expr.lark\'s hash."""\n\n'
                   f"GRAMMAR_SHA256 = {hashlib.sha256(text.encode()).hexdigest()!r}\n"
                   f"TABLES = {{'data': {data!r}, 'memo': {memo!r}}}  # noqa: E501\n")


@lru_cache(maxsize=4096)
def parse_expr(text: str) -> Tree | Token:
    """Parse an expression; raises `ExprError` (E020) on bad syntax."""
    if len(text) > MAX_LENGTH:
        raise ExprError("E020", f"expression is longer than {MAX_LENGTH} characters")
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth > MAX_NESTING:
            raise ExprError("E020", f"expression nests deeper than {MAX_NESTING} parentheses")
    try:
        return _parser().parse(text)
    except lark.exceptions.UnexpectedToken as err:
        if err.token.type == "$END":
            raise ExprError("E020", f"cannot parse expression '{text}': it ends too early", column=len(text) + 1) from None
        where = err.column if isinstance(err.column, int) and err.column > 0 else None
        raise ExprError("E020", f"cannot parse expression '{text}': unexpected '{err.token}'", column=where,
                        width=len(str(err.token)) or 1) from None
    except lark.exceptions.UnexpectedCharacters as err:
        raise ExprError("E020", f"cannot parse expression '{text}': unexpected '{err.char}'", column=err.column) from None
    except lark.exceptions.LarkError:
        raise ExprError("E020", f"cannot parse expression '{text}'") from None


def names_in(text: str) -> set[str]:
    """Parameter names an expression refers to (for dependency ordering)."""
    tree = parse_expr(text)
    if isinstance(tree, lark.Token):
        return set()
    return {str(t.children[0]) for t in tree.iter_subtrees() if t.data == "name"}


def evaluate(text: str, scope: Mapping[str, Number]) -> Number:
    """Value of expression `text` with names looked up in `scope`."""
    return _Evaluator(scope, text).eval(parse_expr(text))


def _check(value: object) -> Number:
    """`value` if it keeps the result contract (bool, int within 2**63, finite float), else an `ExprError`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ExprError("E021", "value is out of range (larger than 2**63)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExprError("E021", "value is not a finite number")
        return value
    raise ExprError("E021", "value is not a real number")


def _divide(a: Number, b: Number, floor: bool) -> Number:
    if b == 0:
        raise ExprError("E021", "division by zero")
    if isinstance(a, int) and isinstance(b, int):
        if a % b:
            raise ExprError("E022", f"{a} is not divisible by {b}", "sizes must divide exactly")
        return a // b
    quotient = _check(a / b)  # a finite float, or the error (1e308 / 1e-308 overflows)
    return math.floor(quotient) if floor else quotient


def _power(a: Number, b: Number) -> Number:
    if abs(b) > 64 or (isinstance(b, int) and b >= 0 and abs(a) > 2 and b * math.log2(abs(a)) > 63):
        raise ExprError("E021", "power is out of range")
    if a < 0 and isinstance(b, float) and not b.is_integer():
        raise ExprError("E021", f"({a}) ** {b} is not a real number (a negative base to a fractional power)")
    try:
        return a**b
    except ZeroDivisionError:
        raise ExprError("E021", "zero to a negative power (division by zero)") from None
    except OverflowError:
        raise ExprError("E021", "power is out of range") from None


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": lambda x: math.sqrt(x) if x >= 0 else _raise("sqrt of a negative number"),
    "min": min,
    "max": max,
    "int": int,
    "float": float,
}


def _raise(message: str) -> Number:
    raise ExprError("E021", message)


class _Evaluator:
    def __init__(self, scope: Mapping[str, Number], text: str = ""):
        self.scope = scope
        self.whole = (len(text) - len(text.lstrip()), len(text.rstrip()))  # where the expression proper lies

    def eval(self, node: Tree | Token) -> Number:
        if isinstance(node, lark.Token):  # a bare atom that lark inlined
            return self.eval(lark.Tree("int" if node.type == "INT" else "float", [node]))
        try:
            return _check(getattr(self, f"_{node.data}")(*node.children))
        except ExprError as err:
            self._locate(err, node)
            raise

    def _locate(self, err: ExprError, node: Tree) -> None:
        """Point an unlocated error at `node`, the innermost sub-expression it came from; when `node` is the
        whole expression, the whole quoted value stays the place (as for any error without a column)."""
        if err.column is not None or node.meta.empty or (node.meta.start_pos, node.meta.end_pos) == self.whole:
            return
        err.column, err.width = node.meta.column, max(1, node.meta.end_pos - node.meta.start_pos)

    def _int(self, tok: Token) -> int:
        digits = str(tok).replace("_", "")
        if len(digits) > 19:
            raise ExprError("E021", "integer literal is out of range")
        return int(digits)

    def _float(self, tok: Token) -> float:
        return float(str(tok).replace("_", ""))

    def _true(self) -> bool:
        return True

    def _false(self) -> bool:
        return False

    def _name(self, tok: Token) -> Number:
        name = str(tok)
        if name not in self.scope:
            raise ExprError("E023", f"unknown name '{name}' in expression", _hint(name, self.scope), tok.column, len(name))
        return self.scope[name]

    def _call(self, name: Token, *args: Tree) -> Number:
        fn = _FUNCTIONS.get(str(name))
        if fn is None:
            raise ExprError("E023", f"unknown function '{name}'", f"known functions: {', '.join(sorted(_FUNCTIONS))}",
                            name.column, len(name))
        values = [self.eval(a) for a in args]
        try:
            return fn(*values)
        except (TypeError, ValueError, OverflowError):
            raise ExprError("E021", f"bad arguments to {name}()") from None

    def _neg(self, a: Tree) -> Number:
        return -self.eval(a)

    def _add(self, a: Tree, b: Tree) -> Number:
        return self.eval(a) + self.eval(b)

    def _sub(self, a: Tree, b: Tree) -> Number:
        return self.eval(a) - self.eval(b)

    def _mul(self, a: Tree, b: Tree) -> Number:
        x, y = self.eval(a), self.eval(b)
        if isinstance(x, int) and isinstance(y, int) and x and y and abs(x).bit_length() + abs(y).bit_length() > 66:
            raise ExprError("E021", "value is out of range (larger than 2**63)")
        return x * y

    def _div(self, a: Tree, b: Tree) -> Number:
        return _divide(self.eval(a), self.eval(b), floor=False)

    def _floordiv(self, a: Tree, b: Tree) -> Number:
        return _divide(self.eval(a), self.eval(b), floor=True)

    def _mod(self, a: Tree, b: Tree) -> Number:
        x, y = self.eval(a), self.eval(b)
        if y == 0:
            raise ExprError("E021", "modulo by zero")
        return x % y

    def _pow(self, a: Tree, b: Tree) -> Number:
        return _power(self.eval(a), self.eval(b))


def _hint(name: str, scope: Mapping[str, Number]) -> str | None:
    from specc.diagnostics import did_you_mean

    return did_you_mean(name, scope.keys())


if __name__ == "__main__":
    write_tables()
