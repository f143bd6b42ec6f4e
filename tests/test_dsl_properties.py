"""Properties of the two front ends and the printers, over generated specs and generated text.

- Round trip: any spec tree printed as TOML or as DSL parses back to the same
  tree; `convert` either way keeps the tree; `fmt` is idempotent; comments
  survive `fmt` and `convert`.
- Expressions: a bare DSL expression is stored in a canonical spelling that
  means the same and reads back as itself.
- Fuzzing: any text, and any mangled reference spec, either parses or gives
  diagnostics with spans — never another exception.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from specc.diagnostics import SpecError
from specc.expr import ExprError, evaluate
from specc.frontend.comments import dsl_comments, toml_comments
from specc.frontend.dsl import parse_dsl
from specc.frontend.formats import Document, convert_text, format_text, write_document
from specc.frontend.toml import parse_toml
from specc.graph import build_graph
from specc.raw import RawSpec, SpanTable
from specc.schema import validate

ROOT = Path(__file__).resolve().parent.parent
# A quick run by default; SPECC_FUZZ_EXAMPLES=2000 for a deep one.
FAST = settings(max_examples=int(os.environ.get("SPECC_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# -- generated spec trees --------------------------------------------------------------------------
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True)
# Keys people write, keys that are keywords somewhere, and keys that need quotes.
KEYS = st.one_of(NAMES, st.sampled_from(["model", "block", "input", "output", "repeat", "with", "override", "true",
                                         "false", "inf", "nan", "in", "op", "nodes", "params", "6:12", "a.b", "", "é",
                                         "has space", "x-y", "1st"]),
                 st.text(max_size=6))


@st.composite
def expressions(draw: st.DrawFn, depth: int = 3) -> str:
    """An arithmetic expression over a few names, with random spacing and parentheses."""
    if depth == 0 or draw(st.booleans()):
        return draw(st.one_of(st.sampled_from(["d_model", "heads", "layers", "x", "inf"]),
                              st.integers(0, 5000).map(str), st.sampled_from(["0.5", "1e-5", "2.", "1_000"])))
    kind = draw(st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "neg", "call", "paren"]))
    a = draw(expressions(depth - 1))
    if kind == "neg":
        return "-" + a
    if kind == "paren":
        return f"({a})"
    if kind == "call":
        return f"{draw(st.sampled_from(['sqrt', 'min', 'max', 'int']))}({a}{', ' + a if draw(st.booleans()) else ''})"
    b = draw(expressions(depth - 1))
    space = draw(st.sampled_from(["", " ", "  "]))
    return f"{a}{space}{kind}{space}{b}"


STRINGS = st.one_of(
    expressions(), NAMES, st.sampled_from(["gelu", "true", "1", "-2", "inf", "wte.weight", "int[batch, seq]?",
                                           "int[batch,seq]", "4*d_model", "a. b", "6:12", "", "x\ny", "tab\there",
                                           'q"uote', "back\\slash", "\x7f", "\x00", "😀"]),
    st.text(max_size=12))
SCALARS = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), STRINGS)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEYS, inner, max_size=4)), max_leaves=8)


@st.composite
def nodes(draw: st.DrawFn) -> Any:
    """A node table as a spec writes it (op or block, inputs in every form, params, clauses) — or something odd."""
    if draw(st.integers(0, 9)) == 0:
        return draw(VALUES)
    kind = draw(st.sampled_from(["op", "block", "op", "neither", "both"]))
    node: dict[str, Any] = {}
    if kind in ("op", "both"):
        node["op"] = draw(st.one_of(NAMES, st.sampled_from(["block", "true", "a-b"])))
    if kind in ("block", "both"):
        node["block"] = draw(NAMES)
    sources = draw(st.one_of(NAMES, st.lists(NAMES, max_size=3), st.dictionaries(KEYS, NAMES, max_size=3), VALUES))
    if draw(st.booleans()):
        node["in"] = sources
    node.update(draw(st.dictionaries(KEYS.filter(lambda k: k not in ("op", "block", "in")), VALUES, max_size=3)))
    if draw(st.booleans()):
        node["repeat"] = draw(st.one_of(NAMES, st.integers(1, 24), VALUES))
    if draw(st.booleans()):
        node["with"] = draw(st.dictionaries(NAMES, SCALARS, max_size=2))
    if draw(st.booleans()):
        layers = st.one_of(st.sampled_from(["6:12", ":4", "-2:", "3"]), st.integers(-3, 12))
        node["overrides"] = draw(st.lists(st.one_of(
            st.fixed_dictionaries({"layers": layers, "with": st.dictionaries(NAMES, SCALARS, max_size=2)}),
            st.dictionaries(KEYS, VALUES, max_size=2)), max_size=3))
    return node


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    graph_nodes = st.dictionaries(KEYS, nodes(), max_size=4)
    block = st.one_of(st.fixed_dictionaries({"inputs": st.lists(NAMES, max_size=3), "output": NAMES, "nodes": graph_nodes},
                                            optional={"params": st.dictionaries(NAMES, SCALARS, max_size=3)}),
                      st.dictionaries(KEYS, VALUES, max_size=3))
    model = st.one_of(st.fixed_dictionaries({}, optional={
        "inputs": st.dictionaries(KEYS, st.one_of(st.sampled_from(["int[batch, seq]", "float[b, 4]?"]), VALUES), max_size=3),
        "outputs": st.dictionaries(KEYS, st.one_of(NAMES, VALUES), max_size=2),
        "nodes": graph_nodes}), VALUES)
    spec = draw(st.fixed_dictionaries({}, optional={
        "format": st.one_of(st.just(1), SCALARS), "extends": STRINGS, "name": STRINGS,
        "params": st.dictionaries(KEYS, st.one_of(expressions(), SCALARS), max_size=5),
        "init": st.dictionaries(KEYS, SCALARS, max_size=2),
        "blocks": st.one_of(st.dictionaries(KEYS, block, max_size=2), VALUES),
        "model": model,
        "objective": st.dictionaries(KEYS, st.dictionaries(KEYS, VALUES, max_size=2), max_size=2),
        "train": st.dictionaries(KEYS, VALUES, max_size=4)}))
    spec.update(draw(st.dictionaries(KEYS, VALUES, max_size=2)))
    return spec


def _print(data: dict[str, Any], suffix: str) -> str:
    return write_document(Document(RawSpec(data, SpanTable(), "t" + suffix), []), suffix)


def _parse(text: str, suffix: str) -> dict[str, Any]:
    return (parse_dsl if suffix == ".spec" else parse_toml)(text, "t" + suffix).data


def _with_comments(text: str, seed: int) -> str:
    """`text` with own-line and end-of-line comments sprinkled over it (never inside a string)."""
    lines = text.split("\n")[:-1]
    out = []
    for i, line in enumerate(lines):
        if (i + seed) % 3 == 0:
            out.append(f"# lead {i}")
        out.append(line + (f"  # trail {i}" if (i * seed) % 4 == 1 else ""))
    out.append("# foot")
    return "\n".join(out) + "\n"


def _texts(comments: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(c.text for c in comments)


# -- round trips ------------------------------------------------------------------------------------
@FAST
@given(specs())
def test_printing_either_form_parses_back_to_the_same_tree(data: dict[str, Any]) -> None:
    for suffix in (".spec", ".toml"):
        text = _print(data, suffix)
        assert _parse(text, suffix) == data, text
        assert format_text(text, "t" + suffix) == text


@FAST
@given(specs())
def test_convert_both_ways_keeps_the_tree(data: dict[str, Any]) -> None:
    toml = _print(data, ".toml")
    dsl = convert_text(toml, "t.toml", ".spec")
    assert _parse(dsl, ".spec") == data
    back = convert_text(dsl, "t.spec", ".toml")
    assert _parse(back, ".toml") == data
    assert convert_text(back, "t.toml", ".spec") == dsl


@FAST
@given(specs(), st.integers(0, 11))
def test_fmt_is_idempotent_and_keeps_every_comment(data: dict[str, Any], seed: int) -> None:
    for suffix, find in ((".spec", dsl_comments), (".toml", toml_comments)):
        text = _with_comments(_print(data, suffix), seed)
        once = format_text(text, "t" + suffix)
        assert format_text(once, "t" + suffix) == once
        assert _parse(once, suffix) == data
        assert _texts(find(once)) == _texts(find(text))
        other = ".toml" if suffix == ".spec" else ".spec"
        converted = convert_text(text, "t" + suffix, other)
        assert _texts((toml_comments if other == ".toml" else dsl_comments)(converted)) == _texts(find(text))


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True), st.integers())
def test_every_number_survives_both_forms(x: float, n: int) -> None:
    for suffix in (".spec", ".toml"):
        back = _parse(_print({"v": {"x": x, "n": n}}, suffix), suffix)["v"]
        assert back["n"] == n and type(back["n"]) is int
        assert type(back["x"]) is float and (back["x"] == x or math.isnan(x) and math.isnan(back["x"]))
        assert math.copysign(1, back["x"]) == math.copysign(1, x)


# -- expressions ----------------------------------------------------------------------------------
SCOPE = {"d_model": 768, "heads": 12, "layers": 12, "x": 3}


@FAST
@given(expressions(depth=4))
def test_bare_expressions_keep_their_meaning_in_canonical_spelling(text: str) -> None:
    try:
        value = parse_dsl(f"v = {text}\n", "t.spec").data["v"]
    except SpecError:
        assume(False)  # e.g. a literal longer than Python converts
        return
    if not isinstance(value, str):  # a plain literal: -1, (1e-5), inf
        assert parse_dsl(_print({"v": value}, ".spec"), "t.spec").data["v"] == value
        return
    assert parse_dsl(f"v = {value}\n", "t.spec").data["v"] == value  # canonical reads back as itself
    try:
        want: Any = evaluate(text, SCOPE)
    except ExprError as err:
        want = err.code
    try:
        got: Any = evaluate(value, SCOPE)
    except ExprError as err:
        got = err.code
    assert got == want or (isinstance(got, float) and isinstance(want, float) and math.isclose(got, want))


# -- fuzzing -------------------------------------------------------------------------------------
TOKENS = ["model", "block", "input", "output", "repeat", "with", "override", "{", "}", "(", ")", "[", "]", "=", ":",
          ",", ".", "->", "?", "\n", " ", "#c\n", '"s"', '"', "x", "f", "1", "2.5", "-", "*", "**", "true", "\\", "é",
          "\t", "\r\n", "int[b, s]", "\x00"]
REFERENCE = (ROOT / "specs" / "gpt2-small.spec").read_text(encoding="utf-8")


def _diagnosed(text: str) -> None:
    """Parsing (and, if that works, checking) `text` either succeeds or raises diagnostics with spans."""
    try:
        raw = parse_dsl(text, "t.spec")
    except SpecError as err:
        assert all(d.span is not None and d.span.line >= 1 and d.span.col >= 1 for d in err.diagnostics)
        assert err.render({"t.spec": text})
        return
    try:
        build_graph(validate(raw))
    except SpecError as err:
        assert err.render({"t.spec": text})


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_token_soup_parses_or_gives_located_diagnostics(text: str) -> None:
    _diagnosed(text)


@FAST
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_gives_located_diagnostics(text: str) -> None:
    _diagnosed(text)


@FAST
@given(st.lists(st.tuples(st.integers(0, len(REFERENCE)), st.integers(0, 12), st.sampled_from(TOKENS)), max_size=4))
def test_mangled_reference_spec_parses_or_gives_located_diagnostics(edits: list[tuple[int, int, str]]) -> None:
    text = REFERENCE
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    _diagnosed(text)
