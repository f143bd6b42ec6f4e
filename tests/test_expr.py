"""Safe arithmetic expressions: meaning, exactness, bounds, and that nothing but arithmetic runs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.expr import MAX_INT, ExprError, evaluate, names_in

SCOPE = {"d_model": 768, "heads": 12, "layers": 12, "std": 0.02, "causal": True}


@pytest.mark.parametrize("text, value", [
    ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("10 - 4 - 3", 3), ("2 * 3 + 4 * 5", 26),
    ("2 ** 3 ** 2", 512),  # right-associative, as in Python
    ("-2 ** 2", -4), ("(-2) ** 2", 4), ("2 ** -1", 0.5), ("--3", 3), ("+3", 3), ("-(4 - 6)", 2),
    ("48 / 4 / 3", 4), ("48 / (4 / 2)", 24), ("7 % 3", 1), ("-7 % 3", 2), ("12 // 4", 3),
    ("7.0 / 2", 3.5), ("7 / 2.0", 3.5), ("1_000 * 2", 2000), ("1.5e3", 1500.0), ("2E2", 200.0),
    ("d_model / heads", 64), ("4 * d_model", 3072), ("d_model // heads * 3", 192),
    ("std / sqrt(2 * layers)", 0.02 / math.sqrt(24)), ("min(heads, 8) + max(1, 2, 3)", 11),
    ("int(7.9)", 7), ("float(3)", 3.0), ("sqrt(16)", 4.0), ("true", True), ("false", False), ("causal", True),
    ("  3  ", 3), ("2**62", 2**62), ("-(2 ** 62 - 1) * 2", -(2**63) + 2),
])
def test_values_and_precedence(text: str, value: float) -> None:
    result = evaluate(text, SCOPE)
    assert result == value and type(result) is type(value)


def test_exact_division_keeps_integers() -> None:
    assert isinstance(evaluate("d_model / heads", SCOPE), int)
    with pytest.raises(ExprError) as info:
        evaluate("d_model / 10", SCOPE)
    assert (info.value.code, info.value.message) == ("E022", "768 is not divisible by 10")
    with pytest.raises(ExprError) as info:
        evaluate("7 // 2", SCOPE)
    assert info.value.code == "E022"


@pytest.mark.parametrize("text, code, fragment", [
    ("2 ** 2 ** 2 ** 64", "E021", "out of range"),
    ("10**12 * 10**12", "E021", "out of range"),
    ("2 ** 63", "E021", "out of range"),
    ("2 ** 64 - 2 ** 64", "E021", "out of range"),
    ("9" * 20, "E021", "integer literal is out of range"),
    ("1e309", "E021", "not a finite number"),
    ("1e308 * 10", "E021", "not a finite number"),
    ("10.0 ** 400", "E021", "out of range"),
    ("2 ** 1000", "E021", "out of range"),
    ("3 ** 100", "E021", "out of range"),
    ("1 / 0", "E021", "division by zero"),
    ("1.0 / 0", "E021", "division by zero"),
    ("5 % 0", "E021", "modulo by zero"),
    ("sqrt(-1)", "E021", "sqrt of a negative number"),
    ("min()", "E021", "bad arguments to min()"),
    ("int(1, 2)", "E021", "bad arguments to int()"),
    ("d_modle * 2", "E023", "unknown name 'd_modle'"),
    ("log(2)", "E023", "unknown function 'log'"),
    ("", "E020", "ends too early"),
    ("4 * * 2", "E020", "unexpected '*'"),
    ("(1 + 2", "E020", "ends too early"),
    ("1 + 2)", "E020", "unexpected ')'"),
    ("3 $ 4", "E020", "unexpected '$'"),
])
def test_errors_and_bounds(text: str, code: str, fragment: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, SCOPE)
    assert info.value.code == code and fragment in info.value.message


def test_error_columns_point_at_the_fault() -> None:
    with pytest.raises(ExprError) as info:
        evaluate("4 * d_modle + 1", SCOPE)
    assert (info.value.column, info.value.width, info.value.hint) == (5, 7, "did you mean 'd_model'?")
    with pytest.raises(ExprError) as info:
        evaluate("4 * * 2", SCOPE)
    assert (info.value.column, info.value.width) == (5, 1)
    with pytest.raises(ExprError) as info:
        evaluate("1 +", SCOPE)
    assert info.value.column == 4  # just past the end


def test_size_limits() -> None:
    deep_ok = "(" * 50 + "1" + ")" * 50
    assert evaluate(deep_ok, {}) == 1
    with pytest.raises(ExprError, match="nests deeper"):
        evaluate("(" * 51 + "1" + ")" * 51, {})
    with pytest.raises(ExprError, match="longer than"):
        evaluate("1" + " + 1" * 200, {})
    assert evaluate("1" + " + 1" * 100, {}) == 101


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "open('/etc/passwd')", "d_model.__class__", "[1, 2]", "{1: 2}",
    "lambda: 1", "1 if true else 2", "d_model; 1", "'text'", "a = 1", "x[0]", "f'{1}'", "1 and 2", "not 1",
    "1 < 2", "1 == 1", "`1`", "$d_model", "0x10", "1j",
])
def test_nothing_but_arithmetic_parses(text: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, {"d_model": 1, "x": 1, "a": 1})
    assert info.value.code == "E020"


@pytest.mark.parametrize("text", ["eval(1)", "exec(1)", "getattr(1, 2)", "print(1)", "compile(1)"])
def test_only_the_fixed_functions_are_callable(text: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, {})
    assert info.value.code == "E023" and "known functions: float, int, max, min, sqrt" in (info.value.hint or "")


def test_names_are_scope_lookups_only() -> None:
    for name in ("__builtins__", "__class__", "os", "self"):
        with pytest.raises(ExprError) as info:
            evaluate(name, SCOPE)
        assert info.value.code == "E023"


def test_names_in_lists_parameters_not_functions() -> None:
    assert names_in("a * b + min(a, 3) - sqrt(c)") == {"a", "b", "c"}
    assert names_in("12") == set()
    with pytest.raises(ExprError):
        names_in("a +")


# -- properties ----------------------------------------------------------------------------------------------
_LEAF = st.integers(0, 1000).map(str) | st.sampled_from(["heads", "layers"])


def _tree(depth: int) -> st.SearchStrategy[tuple]:
    if depth == 0:
        return _LEAF.map(lambda t: ("leaf", t))
    sub = _tree(depth - 1)
    return st.one_of(sub, st.tuples(st.sampled_from(["+", "-", "*"]), sub, sub), sub.map(lambda t: ("neg", t)))


def _render(node: tuple) -> str:
    if node[0] == "leaf":
        return node[1]
    if node[0] == "neg":
        return f"-({_render(node[1])})"
    return f"({_render(node[1])} {node[0]} {_render(node[2])})"


def _value(node: tuple) -> int:
    if node[0] == "leaf":
        return SCOPE[node[1]] if node[1] in SCOPE else int(node[1])  # type: ignore[return-value]
    if node[0] == "neg":
        return -_value(node[1])
    a, b = _value(node[1]), _value(node[2])
    return a + b if node[0] == "+" else a - b if node[0] == "-" else a * b


@settings(max_examples=200, deadline=None)
@given(_tree(4))
def test_integer_arithmetic_agrees_with_python_ints(node: tuple) -> None:
    expected = _value(node)
    try:
        result = evaluate(_render(node), SCOPE)
    except ExprError as err:
        assert err.code == "E021" and abs(expected) > 2**60  # only out-of-range results are refused
        return
    assert result == expected and abs(result) <= MAX_INT


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("0123456789.e+-*/%() _abcdsqrtmin,") + ["**", "//", "sqrt(", "1e308"]),
                max_size=30).map("".join))
def test_any_text_evaluates_or_gives_an_expression_error(text: str) -> None:
    try:
        value = evaluate(text, {"a": 3, "b": 2.5, "c": True})
    except ExprError as err:
        assert err.code in {"E020", "E021", "E022", "E023"} and err.message
        return
    assert isinstance(value, (int, float, bool))
    assert isinstance(value, bool) or (abs(value) <= MAX_INT if isinstance(value, int) else math.isfinite(value))


# -- the result contract: a bool, an int within 2**63 or a finite float, whatever the parts do ----------------
@pytest.mark.parametrize("text, fragment, column, width", [
    ("(-1) ** 0.5", "(-1) ** 0.5 is not a real number", None, 1),  # the whole expression: the whole value is the place
    ("4 * (1 - 2) ** 0.5", "(-1) ** 0.5 is not a real number", 5, 14),
    ("(-8) ** (1.0 / 3)", "not a real number", None, 1),
    ("1e308 // 1e-308", "not a finite number", None, 1),
    ("1 + 1e308 * 10", "not a finite number", 5, 10),
    ("0 ** -1", "zero to a negative power", None, 1),
    ("std + d_model / 0", "division by zero", 7, 11),
    ("int(1e300)", "out of range", None, 1),
])
def test_results_outside_the_contract_are_located_errors(text: str, fragment: str, column: int | None,
                                                         width: int) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, SCOPE)
    assert info.value.code == "E021" and fragment in info.value.message
    assert (info.value.column, info.value.width) == (column, width)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.sampled_from(["0", "1", "-1", "0.5", "2.5", "1e308", "1e-320", "(-8)", "63", "d_model", "std"]),
                    lambda inner: st.one_of(
                        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]), inner).map(
                            lambda t: f"({t[0]} {t[1]} {t[2]})"),
                        st.tuples(st.sampled_from(["sqrt", "int", "float", "-"]), inner).map(lambda t: f"{t[0]}({t[1]})")),
                    max_leaves=8))
def test_every_value_keeps_the_contract(text: str) -> None:
    """Any arithmetic over hostile numbers is a number of the contract or an ExprError, never another exception."""
    try:
        value = evaluate(text, SCOPE)
    except ExprError:
        return
    assert type(value) in (bool, int, float)
    assert abs(value) <= MAX_INT if isinstance(value, int) else math.isfinite(value)


# -- the parser's generated tables (specc/expr_tables.py) ------------------------------------
TABLE_CASES = ["4 * d_model", "a + b // 2 ** -c % 3", "max(1, d / 2, 3)", "((x))", "1.5e3 - true", "f()", "-2 ** 2",
               "1_000 * 2", "2E2", "1 +", "a $ b", "(1", "1 2", "min(,)", ""]


def _outcome(parser, text: str):
    from lark.exceptions import LarkError

    try:
        tree = parser.parse(text)
    except LarkError as err:
        return type(err).__name__, getattr(err, "column", None), str(getattr(err, "token", ""))
    return tree, [(t.meta.column, t.meta.end_column) for t in getattr(tree, "iter_subtrees", lambda: [])()
                  if not t.meta.empty]


def test_the_shipped_tables_are_made_from_this_grammar() -> None:
    """Editing expr.lark without `python -m specc.expr` would fall back to building the parser at every start."""
    import hashlib

    from specc import expr, expr_tables

    assert expr_tables.GRAMMAR_SHA256 == hashlib.sha256(expr.GRAMMAR.read_text().encode()).hexdigest(), \
        "specc/expr.lark changed: regenerate its tables with `python -m specc.expr`"


def test_the_loaded_parser_parses_as_the_built_one() -> None:
    from lark import Lark

    from specc import expr, expr_tables

    loaded, built = Lark.load(expr_tables.TABLES), expr._build(expr.GRAMMAR.read_text())
    for text in TABLE_CASES:
        assert _outcome(loaded, text) == _outcome(built, text), text


def test_a_stale_table_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from specc import expr, expr_tables

    monkeypatch.setattr(expr_tables, "GRAMMAR_SHA256", "0" * 64)
    expr._parser.cache_clear()
    try:
        assert evaluate("2 + 3 * 4", {}) == 14 and expr._parser().source_path != "<deserialized>"
    finally:
        expr._parser.cache_clear()
