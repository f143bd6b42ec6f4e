"""The DSL front end: what its text means, that it means what the TOML form means, and fmt/convert.

Every spec in specs/ is converted TOML → DSL → TOML and must give the same
RawSpec data; both forms must build the same graph (canonical data,
architecture hash, parameter names and count). Every `.spec` in specs/ is
parsed, compiled and run forward and backward at tiny size.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import specc
from specc.canonical import architecture_hash, canonical_data, canonical_graph, runtime_hash
from specc.diagnostics import SpecError
from specc.frontend.comments import dsl_comments, toml_comments
from specc.frontend.dsl import parse_dsl
from specc.frontend.formats import convert_text, format_text, read_document, write_document
from specc.frontend.toml import parse_toml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TOML_SPECS = sorted(p.name for p in SPECS.glob("*.toml"))
DSL_SPECS = sorted(p.name for p in SPECS.glob("*.spec"))


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as err:
        parse_dsl(text, "t.spec")
    return err.value


# -- what DSL text means ---------------------------------------------------------------------------
def test_bare_values_are_expressions_stored_as_strings_in_canonical_spelling() -> None:
    raw = parse_dsl('p {\n a = 4*d_model\n b = ((d_model)) ** -0.5\n c = -1\n d = 1e-5\n e = true\n'
                    ' f = "4*d_model"\n g = wte.weight\n h = int[batch,seq]?\n i = -inf\n j = gelu\n'
                    ' k = 2 - (3 - x)\n l = -(a + b) * c\n m = (a ** b) ** c\n n = sqrt(2 * layers)\n o = 1_000\n}\n',
                    "t.spec")
    assert raw.data["p"] == {
        "a": "4 * d_model", "b": "d_model ** -0.5", "c": -1, "d": 1e-5, "e": True, "f": "4*d_model",
        "g": "wte.weight", "h": "int[batch, seq]?", "i": -math.inf, "j": "gelu", "k": "2 - (3 - x)",
        "l": "-(a + b) * c", "m": "(a ** b) ** c", "n": "sqrt(2 * layers)", "o": 1000,
    }


def test_strings_use_toml_escapes() -> None:
    raw = parse_dsl(r'name = "tab\there \"q\" \u00e9 \U0001F600 back\\slash"' + "\n", "t.spec")
    assert raw.data["name"] == 'tab\there "q" é 😀 back\\slash'


def test_calls_make_the_node_tables_the_toml_form_writes() -> None:
    raw = parse_dsl(
        "model {\n"
        "  a = layer_norm(x, dim=d_model)\n"
        "  b = add(x, y)\n"
        "  c = attention(x: a, mask: m, heads=4, causal=true)\n"
        "  d = add([x])\n"
        "  e = pool()\n"
        '  h = block layer(d, m) repeat layers with {heads = 8} override "6:12" {heads = 16} override -1 {heads = 2}\n'
        "  t = lm_head(h, tie={\"decoder.weight\" = wte.weight})\n"
        "  r = {kv_heads = 4}\n"
        "}\n", "t.spec")
    assert raw.data["model"]["nodes"] == {
        "a": {"op": "layer_norm", "in": "x", "dim": "d_model"},
        "b": {"op": "add", "in": ["x", "y"]},
        "c": {"op": "attention", "in": {"x": "a", "mask": "m"}, "heads": 4, "causal": True},
        "d": {"op": "add", "in": ["x"]},
        "e": {"op": "pool"},
        "h": {"block": "layer", "in": ["d", "m"], "repeat": "layers", "with": {"heads": 8},
              "overrides": [{"layers": "6:12", "with": {"heads": 16}}, {"layers": -1, "with": {"heads": 2}}]},
        "t": {"op": "lm_head", "in": "h", "tie": {"decoder.weight": "wte.weight"}},
        "r": {"kv_heads": 4},
    }


def test_blocks_model_and_sections_make_the_toml_tables() -> None:
    raw = parse_dsl(
        "format = 1\n"
        "block layer(x, mask) -> out {\n  params { scale = 2 }\n  out = scale(x, factor=scale)\n}\n"
        "model {\n  input tokens: int[batch, seq]\n  output hidden = h\n  h = block layer(tokens, tokens)\n}\n"
        "objective.causal_lm {}\n"
        "tasks.sst2 { head = logits, data { train = \"t.jsonl\" } }\n"
        "tasks.sst2.data.validation = \"v.jsonl\"\n", "t.spec")
    assert raw.data == {
        "format": 1,
        "blocks": {"layer": {"inputs": ["x", "mask"], "output": "out", "params": {"scale": 2},
                             "nodes": {"out": {"op": "scale", "in": "x", "factor": "scale"}}}},
        "model": {"inputs": {"tokens": "int[batch, seq]"}, "outputs": {"hidden": "h"},
                  "nodes": {"h": {"block": "layer", "in": ["tokens", "tokens"]}}},
        "objective": {"causal_lm": {}},
        "tasks": {"sst2": {"head": "logits", "data": {"train": "t.jsonl", "validation": "v.jsonl"}}},
    }


def test_calls_and_arrays_may_wrap_over_lines_and_commas_separate_too() -> None:
    raw = parse_dsl("model {\n  a = attention(x: b,\n      mask: m,\n      heads=[1,\n 2],\n  ), z = add(a, a)\n}\n", "t.spec")
    assert raw.data["model"]["nodes"] == {"a": {"op": "attention", "in": {"x": "b", "mask": "m"}, "heads": [1, 2]},
                                          "z": {"op": "add", "in": ["a", "a"]}}


def test_spans_point_at_keys_and_values_in_the_spec_file() -> None:
    text = "format = 1\nmodel {\n  input tokens: int[batch, seq]\n  n = layer_norm(tokens, dim=4 * d)\n}\n"
    raw = parse_dsl(text, "t.spec")
    line = text.splitlines()[3]

    def at(span):  # type: ignore[no-untyped-def]
        return text.splitlines()[span.line - 1][span.col - 1 : span.end_col - 1]

    node = ("model", "nodes", "n")
    assert at(raw.spans.keys[node]) == "n"
    assert at(raw.spans.values[node + ("op",)]) == "layer_norm"
    assert at(raw.spans.values[node + ("in",)]) == "tokens"
    assert at(raw.spans.keys[node + ("dim",)]) == "dim" and at(raw.spans.values[node + ("dim",)]) == "4 * d"
    assert at(raw.spans.values[("model", "inputs", "tokens")]) == "int[batch, seq]"
    assert raw.spans.keys[node].line == 4 and line.startswith("  n =")


def test_keys_merge_like_toml_and_a_value_given_twice_is_an_error() -> None:
    assert parse_dsl("a.b = 1\na { c = 2 }\na.d.e = 3\n", "t.spec").data == {"a": {"b": 1, "c": 2, "d": {"e": 3}}}
    (d,) = _error("a { b = 1 }\na.b = 2\n").diagnostics
    assert (d.code, d.message, d.span.line) == ("E006", "'a.b' is already defined at line 1", 2)
    assert _error("a = 1\na.b = 2\n").diagnostics[0].code == "E006"


def test_several_mistakes_in_one_file_are_reported_together() -> None:
    err = _error('a = 1\na = 2\nb = "\\q"\nmodel {\n  n = f(k=1, x)\n}\n')
    assert [d.code for d in err.diagnostics] == ["E006", "E001", "E007"]


@pytest.mark.parametrize("text, message", [
    ("x = " + "[" * 70 + "]" * 70, "brackets nest deeper than 64 levels"),
    ("x = " + "1 + " * 400 + "1\n", "expression is longer than 1000 characters"),
    ("x = " + "-" * 2000 + "1\n", "expression is longer than 1000 characters"),
    ("x" + ".x" * 40 + " = 1\n", "a key path may have at most 32 parts"),
    ("x = " + "9" * 5000 + "\n", "integer literal is too long"),
    ("a { " * 40 + "}" * 40, "spec nests deeper than 32 levels"),
])
def test_pathological_input_gives_a_diagnostic(text: str, message: str) -> None:
    assert message in _error(text).diagnostics[0].message



def test_control_characters_in_comments_are_refused_as_in_toml() -> None:
    """TOML refuses them, so `convert` could not write them there (found by fuzzing); a tab and a CRLF are fine."""
    (d,) = _error("# ok\r\nname = 1  # a\x00b\n").diagnostics
    assert (d.code, d.span.line, d.span.col, d.message) == ("E001", 2, 14, "control character U+0000 in a comment")
    assert parse_dsl("# a\tb\r\nname = 1\r\n", "t.spec").data == {"name": 1}

def test_huge_inputs_parse_in_one_pass() -> None:
    body = "".join(f"  p{i} = {i} * d_model + {i}  # {i}\n" for i in range(1000))
    raw = parse_dsl("params {\n" + body + "}\n", "t.spec")
    assert len(raw.data["params"]) == 1000 and raw.data["params"]["p999"] == "999 * d_model + 999"
    long_line = "x = [" + ", ".join(str(i) for i in range(3000)) + "]\n"
    assert len(parse_dsl(long_line, "t.spec").data["x"]) == 3000


# -- one meaning: both forms of every reference spec ------------------------------------------------
@pytest.mark.parametrize("name", TOML_SPECS)
def test_toml_to_dsl_to_toml_gives_the_same_raw_spec(name: str) -> None:
    text = (SPECS / name).read_text(encoding="utf-8")
    dsl = convert_text(text, name, ".spec")
    back = convert_text(dsl, name.replace(".toml", ".spec"), ".toml")
    data = parse_toml(text, name).data
    assert parse_dsl(dsl, "x.spec").data == data
    assert parse_toml(back, "y.toml").data == data
    assert format_text(dsl, "x.spec") == dsl and format_text(back, "y.toml") == back
    # Every comment survives both conversions.
    comments = [c.text for c in toml_comments(text)]
    assert [c.text for c in dsl_comments(dsl)] == comments
    assert [c.text for c in toml_comments(back)] == comments


@pytest.fixture(scope="module")
def dsl_twins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every TOML spec converted to a `.spec` twin in one folder, `extends` pointing at the twins."""
    folder = tmp_path_factory.mktemp("twins")
    for name in TOML_SPECS:
        doc = read_document((SPECS / name).read_text(encoding="utf-8"), name)
        base = doc.raw.data.get("extends")
        if isinstance(base, str):
            doc.raw.data["extends"] = base.replace(".toml", ".spec")
        (folder / name.replace(".toml", ".spec")).write_text(write_document(doc, ".spec"), encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", TOML_SPECS)
def test_both_forms_build_the_same_graph(name: str, dsl_twins: Path) -> None:
    a = specc.load_graph(SPECS / name)
    b = specc.load_graph(dsl_twins / name.replace(".toml", ".spec"))
    assert canonical_data(a.spec) == canonical_data(b.spec) and canonical_graph(a) == canonical_graph(b)
    assert architecture_hash(a) == architecture_hash(b) and runtime_hash(a.spec) == runtime_hash(b.spec)
    assert a.parameter_names() == b.parameter_names() and a.param_count() == b.param_count()
    assert list(a.nodes) == list(b.nodes)


@pytest.mark.parametrize("name", [n for n in DSL_SPECS if n.replace(".spec", ".toml") in TOML_SPECS])
def test_committed_dsl_specs_equal_their_toml_twins(name: str) -> None:
    a = specc.load_graph(SPECS / name.replace(".spec", ".toml"))
    b = specc.load_graph(SPECS / name)
    assert canonical_data(a.spec) == canonical_data(b.spec) and canonical_graph(a) == canonical_graph(b)
    assert architecture_hash(a) == architecture_hash(b) and runtime_hash(a.spec) == runtime_hash(b.spec)
    assert a.parameter_names() == b.parameter_names() and a.param_count() == b.param_count()


def test_the_dsl_form_of_gpt2_small_is_shorter() -> None:
    dsl, toml = (SPECS / "gpt2-small.spec").read_text(), (SPECS / "gpt2-small.toml").read_text()
    assert len(dsl) < 0.9 * len(toml)


@pytest.mark.parametrize("name", DSL_SPECS)
def test_every_dsl_spec_parses_compiles_and_is_canonical(name: str) -> None:
    """(tests/test_specs_smoke.py runs every file in specs/, .spec included, forward and backward.)"""
    graph = specc.load_graph(SPECS / name)
    model = specc.compile_model(graph, device="meta", init=False)
    assert {n: tuple(p.shape) for n, p in model.named_parameters()} == graph.parameter_names()
    text = (SPECS / name).read_text(encoding="utf-8")
    assert format_text(text, name) == text


# -- fmt: canonical text, comments kept ------------------------------------------------------------
def test_fmt_canonicalises_layout_order_and_expression_spelling_and_keeps_comments() -> None:
    messy = ('# head\nmodel{input tokens:int[ batch,seq ]\n n=layer_norm( tokens,dim = 4*d )   # trailing\n'
             '# before output\noutput y=n}\nparams{d=8}\nformat=1\n')
    assert format_text(messy, "t.spec") == (
        "format = 1\n\n"
        "params {\n  d = 8\n}\n\n"
        "# head\n"
        "model {\n  input tokens: int[batch, seq]\n\n"
        "  n = layer_norm(tokens, dim=4 * d)  # trailing\n\n"
        "  # before output\n  output y = n\n}\n")


def test_fmt_keeps_comments_before_a_closing_brace_and_at_the_end() -> None:
    text = "params {\n  a = 1\n  # b = 2\n}\n# the end\n"
    assert format_text(text, "t.spec") == text
    toml = convert_text(text, "t.spec", ".toml")
    assert toml == "[params]\na = 1\n# b = 2\n# the end\n"


def test_fmt_keeps_aligned_trailing_comments_in_place_and_convert_does_not() -> None:
    text = 'a = 1          # one\nbb = "x"       # two\n'
    assert format_text(text, "t.toml") == text
    assert convert_text(text, "t.toml", ".spec") == 'a = 1  # one\nbb = x  # two\n'


def test_numbers_keep_their_spelling_where_the_other_form_reads_it_back() -> None:
    text = "[train]\nlr = 3e-3\nsteps = 1_000\nmask = 0x0f\nx = +5\n"
    assert convert_text(text, "t.toml", ".spec") == "train {\n  lr = 3e-3\n  steps = 1_000\n  mask = 15\n  x = 5\n}\n"
    assert format_text(text, "t.toml") == "[train]\nlr = 3e-3\nsteps = 1_000\nmask = 15\nx = 5\n"


def test_odd_trees_print_in_the_generic_form_and_survive() -> None:
    data = {
        "model": {"nodes": {}, "inputs": {}, "x": 5},
        "blocks": {"odd": {"inputs": "x", "nodes": {"n": {"op": "block", "in": {}}}}, "b": {}},
        "block": 1, "": {"true": [], "input": {"output": 1.5}},
    }
    for suffix in (".spec", ".toml"):
        doc = read_document("", "t" + suffix)
        doc.raw.data.update(data)
        text = write_document(doc, suffix)
        assert (parse_dsl if suffix == ".spec" else parse_toml)(text, "t" + suffix).data == data, text


def test_a_dsl_spec_may_extend_a_toml_base_and_the_other_way(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text((SPECS / "gpt2-small.toml").read_text())
    (tmp_path / "base.spec").write_text((SPECS / "gpt2-small.spec").read_text())
    (tmp_path / "a.spec").write_text('format = 1\nextends = "base.toml"\nparams { layers = 2 }\n')
    (tmp_path / "b.toml").write_text('format = 1\nextends = "base.spec"\n[params]\nlayers = 2\n')
    a, b = specc.load_graph(tmp_path / "a.spec"), specc.load_graph(tmp_path / "b.toml")
    assert canonical_graph(a) == canonical_graph(b) and a.param_count() == b.param_count()
    assert a.spec.raw.value_span(("params", "layers")).file == str(tmp_path / "a.spec")
    assert a.spec.raw.value_span(("params", "heads")).describe().endswith("(base file)")


def test_a_toml_date_has_no_dsl_spelling_and_says_so() -> None:
    with pytest.raises(SpecError) as err:
        convert_text("[train]\nstarted = 1979-05-27\n", "t.toml", ".spec")
    (d,) = err.value.diagnostics
    assert d.code == "E008" and d.message == "the DSL has no date or time values ('train.started')"
    assert format_text("[train]\nstarted = 1979-05-27\n", "t.toml") == "[train]\nstarted = 1979-05-27\n"
