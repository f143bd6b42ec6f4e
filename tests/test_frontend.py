"""The TOML front end: spans, `extends`, `--set`, and hostile input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.diagnostics import Diagnostic, Origin, Span, SpecError
from specc.frontend import apply_cli_sets, parse, parse_text, read_source
from specc.frontend.limits import MAX_SPEC_CHARS
from specc.raw import RawSpec
from specc.schema import validate


def _col(text: str, line: int, needle: str) -> int:
    """1-based column of `needle` on 1-based `line` of `text`."""
    return text.split("\n")[line - 1].index(needle) + 1


def _error(fn, *args, **kwargs) -> SpecError:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    return info.value


# -- spans -------------------------------------------------------------------------------------------------
DOC = '''\
format = 1
"quoted key" = 'v'   # a comment with = and ]
note = "a # not a comment ] } ="
after = 2
long = """
two
lines"""
tail = 3

[params]
d_model   =   512
ff.inner = "4 * d_model"

[model.nodes]
attn = { op = "attention", in = ["a", "b"], heads = 8, sub = { k = 1 } }
arr = [
  1,
  { x = 2 },
]

[[model.nodes.h.overrides]]
layers = "0:2"

[[model.nodes.h.overrides]]
layers = "2:4"
with = { eps = 1e-6 }
'''


@pytest.fixture(scope="module")
def doc() -> RawSpec:
    return parse_text(DOC, "doc.toml")


@pytest.mark.parametrize("path, line, key, value", [
    (("format",), 1, "format", "1"),
    (("quoted key",), 2, '"quoted key"', "'v'"),
    (("note",), 3, "note", '"a # not a comment ] } ="'),
    (("after",), 4, "after", "2"),
    (("tail",), 8, "tail", "3"),
    (("params", "d_model"), 11, "d_model", "512"),
    (("params", "ff", "inner"), 12, "ff.inner", '"4 * d_model"'),
    (("model", "nodes", "attn", "op"), 15, "op", '"attention"'),
    (("model", "nodes", "attn", "in"), 15, "in", '["a", "b"]'),
    (("model", "nodes", "attn", "heads"), 15, "heads", "8"),
    (("model", "nodes", "attn", "sub", "k"), 15, "k", "1"),
    (("model", "nodes", "h", "overrides", 0, "layers"), 22, "layers", '"0:2"'),
    (("model", "nodes", "h", "overrides", 1, "layers"), 25, "layers", '"2:4"'),
    (("model", "nodes", "h", "overrides", 1, "with", "eps"), 26, "eps", "1e-6"),
])
def test_key_and_value_spans(doc: RawSpec, path: tuple, line: int, key: str, value: str) -> None:
    key_span, value_span = doc.spans.keys[path], doc.spans.values[path]
    text_line = DOC.split("\n")[line - 1]
    assert (key_span.file, key_span.line, value_span.line) == ("doc.toml", line, line)
    assert text_line[key_span.col - 1 : key_span.end_col - 1] == key  # the key itself, no trailing space
    assert text_line[value_span.col - 1 : value_span.end_col - 1] == value


def test_spans_of_array_elements_and_multiline_values(doc: RawSpec) -> None:
    assert doc.spans.values[("model", "nodes", "attn", "in", 1)] == Span("doc.toml", 15, _col(DOC, 15, '"b"'),
                                                                          _col(DOC, 15, '"b"') + 3)
    assert doc.spans.values[("model", "nodes", "arr", 0)].line == 17
    assert doc.spans.keys[("model", "nodes", "arr", 1, "x")].line == 18
    assert doc.spans.values[("long",)].line == 5  # a multi-line string starts where it opens
    assert doc.data["model"]["nodes"]["h"]["overrides"][1]["with"] == {"eps": 1e-6}


def test_nearest_span_falls_back_to_an_ancestor(doc: RawSpec) -> None:
    assert doc.value_span(("model", "nodes", "attn", "missing")) == doc.spans.values[("model", "nodes", "attn")]
    assert doc.key_span(("nowhere",)) is None


def test_quoted_keys_with_escapes_and_unicode_have_spans() -> None:
    text = '"ключ" = 1\n"a\\tb" = 2\n\'lit\\n\' = 3\n'
    raw = parse_text(text, "u.toml")
    assert set(raw.data) == {"ключ", "a\tb", "lit\\n"}
    for key, line in (("ключ", 1), ("a\tb", 2), ("lit\\n", 3)):
        assert raw.spans.keys[(key,)].line == line



def test_tables_a_dotted_header_or_key_creates_have_spans_at_their_part() -> None:
    """`[model.noees.x]` also creates `model.noees`: a mistake in that name points at it (found by fuzzing)."""
    text = "format = 1\n[model.noees.position]\noffset = 1\n[t]\nff.inner = 2\n"
    raw = parse_text(text, "h.toml")
    for path, line, part in ((("model",), 2, "model"), (("model", "noees"), 2, "noees"), (("t", "ff"), 5, "ff")):
        span = raw.spans.keys[path]
        assert span.line == line and text.split("\n")[line - 1][span.col - 1 : span.end_col - 1] == part
    (d,) = [d for d in _error(validate, raw).diagnostics if "noees" in d.message]
    assert (d.code, d.span.line, d.span.col) == ("E010", 2, 8)


def test_dots_in_comments_and_strings_are_no_deep_key() -> None:
    """The deep-dotted-key guard looks at keys only: a long dotted name in a comment or string is text (found by fuzzing)."""
    deep = ".".join(["a"] * 40)
    raw = parse_text(f"# see {deep}\nd = \"{deep}\"\ne = \'\'\'\n{deep}\n\'\'\'\n", "dots.toml")
    assert raw.data["d"] == deep
    assert "deeper than" in _error(parse_text, f"{deep} = 1\n", "deep.toml").diagnostics[0].message

# -- syntax errors and hostile input -------------------------------------------------------------------------
@pytest.mark.parametrize("text, line, col", [
    ("a = 1\nb = = 2\n", 2, 5),
    ('a = 1\nb = "abc\nc = 2\n', 2, 9),
    ("a = 1 2\n", 1, 7),
    ("x = 1\n\n[b\n", 3, 3),
    ("x = [1, 2", 1, 10),
    ("a = {b = 1,}\n", 1, 12),
])
def test_syntax_errors_point_at_line_and_column(text: str, line: int, col: int) -> None:
    err = _error(parse_text, text, "bad.toml")
    (d,) = err.diagnostics
    assert d.code == "E001" and d.message.startswith("TOML syntax error: ")
    assert (d.span.file, d.span.line, d.span.col) == ("bad.toml", line, col)
    assert "(at line" not in d.message  # the position is in the span, not repeated in the text


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_bytes(b'format = 1\n\nname = "ok \xff"\n')
    (d,) = _error(parse, spec).diagnostics
    assert (d.code, d.message, d.span.line, d.span.col) == ("E001", "spec file is not valid UTF-8", 3, 12)


def test_nul_bytes_are_a_diagnostic_and_render_safely(tmp_path: Path) -> None:
    spec = tmp_path / "nul.toml"
    spec.write_bytes(b'format = 1\nname = "a\x00b"\n')
    err = _error(parse, spec)
    (d,) = err.diagnostics
    assert (d.code, d.span.line) == ("E001", 2)
    assert "\x00" not in err.render()


def test_many_diagnostics_in_one_file_render_each_line_reading_it_once(tmp_path: Path, monkeypatch) -> None:
    """Every diagnostic shows its own source line; the file is read once for all of them, not once each."""
    spec = tmp_path / "many.toml"
    spec.write_text("format = 1\n" + "".join(f"x{i} = 1\n" for i in range(50)))
    err = SpecError([Diagnostic("E010", f"bad x{i}", Span(str(spec), i + 2, 1, 3)) for i in range(50)])
    reads = []
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.append(self) or read_text(self, *a, **k))
    text = err.render()
    assert reads == [spec]
    assert all(f"{i + 2:>4} | x{i} = 1" in text for i in range(50))


DEEP = 20_000  # as deep as fits in the 128 K characters a spec may have (longer text is E002 unread)


@pytest.mark.parametrize("text", [
    "a = " + "[" * DEEP + "]" * DEEP + "\n",
    "a = " + "[" * DEEP + "\n",
    "a = " + "{b = " * DEEP + "1" + "}" * DEEP + "\n",
    "a" + ".a" * DEEP + " = 1\n",
    "[" + ".".join(["t"] * DEEP) + "]\n",
    "x = " + "9" * DEEP + "\n",
    "x = " + "1" * 5_000 + ".5\n",
    "a = " + "[" * 100_000 + "]" * 100_000 + "\n",
], ids=["arrays", "unclosed-arrays", "inline-tables", "dotted-key", "table-header", "huge-int", "huge-float", "too-long"])
def test_pathological_input_gives_a_diagnostic(text: str) -> None:
    """Deep nesting and huge numbers end in a diagnostic (E001/E021), never another exception or a hang."""
    try:
        raw = parse_text(text, "deep.toml")
    except SpecError as err:
        assert err.diagnostics[0].code == ("E002" if len(text) > MAX_SPEC_CHARS else "E001")
        assert err.diagnostics[0].span.file == "deep.toml"
        err.render({"deep.toml": text})
        return
    # a float literal that overflows to inf parses; the schema refuses it where it is written
    (d,) = _error(validate, raw).diagnostics[:1]
    assert d.code in {"E011", "E021"}


def test_huge_integer_is_refused_where_it_is_written() -> None:
    raw = parse_text('format = 1\n[params]\nd_model = 123456789012345678901234567890\n'
                     '[model]\ninputs = {}\noutputs = {}\nnodes = {}\n', "big.toml")
    (d,) = _error(validate, raw).diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E021", 3, 11)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list('ab=[]{}."\'#,\n 1\\x\x00é')), max_size=60))
def test_arbitrary_text_parses_or_gives_diagnostics(text: str) -> None:
    try:
        raw = parse_text(text, "fuzz.toml")
    except SpecError as err:
        assert all(d.code.startswith("E") for d in err.diagnostics)
        err.render({"fuzz.toml": text})
        return
    _assert_every_key_has_a_span(raw.data, raw, ())


def _assert_every_key_has_a_span(node: object, raw: RawSpec, path: tuple) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            assert path + (key,) in raw.spans.keys, path + (key,)
            _assert_every_key_has_a_span(value, raw, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _assert_every_key_has_a_span(value, raw, path + (i,))


_KEY = st.one_of(st.from_regex(r"[a-z_][a-z0-9_-]{0,6}", fullmatch=True),
                 st.text(alphabet="ab .=#é\"\\", min_size=1, max_size=5))
_SCALAR = st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.text(alphabet='ab #="\\\'é\n', max_size=6))


def _toml_key(key: str) -> str:
    if key.replace("_", "a").replace("-", "a").isalnum() and key.isascii():
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"


_VALUE = st.recursive(_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(_KEY, inner, max_size=3)), max_leaves=8)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_KEY, st.dictionaries(_KEY, _VALUE, max_size=4), min_size=1, max_size=4))
def test_every_key_of_a_generated_document_has_a_span(tables: dict[str, dict[str, object]]) -> None:
    """Any valid document: every key path in the data has a key span, on the line where it is written."""
    lines = []
    for table, body in tables.items():
        lines.append(f"[{_toml_key(table)}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in body.items()]
    text = "\n".join(lines) + "\n"
    raw = parse_text(text, "gen.toml")
    assert raw.data == tables
    _assert_every_key_has_a_span(raw.data, raw, ())
    for table, body in tables.items():
        for key in body:
            span = raw.spans.keys[(table, key)]
            assert text.split("\n")[span.line - 1][span.col - 1 : span.end_col - 1] == _toml_key(key)


# -- reading files ---------------------------------------------------------------------------------------------
def test_missing_file_directory_and_oversized_file(tmp_path: Path) -> None:
    assert _error(read_source, tmp_path / "none.toml").diagnostics[0].message == "spec file not found"
    assert _error(read_source, tmp_path).diagnostics[0].code == "E002"
    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(4 * 1024 * 1024 + 1)
    assert "limit" in _error(read_source, big).diagnostics[0].message


def test_unknown_suffix() -> None:
    (d,) = _error(parse_text, "x = 1", "spec.yaml").diagnostics
    assert d.code == "E003" and ".toml" in d.message


# -- extends ---------------------------------------------------------------------------------------------------
BASE = '''\
format = 1
name = "base"

[params]
d_model = 512
heads = 8
layers = [1, 2, 3]
'''


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extends_merges_tables_and_keeps_provenance(tmp_path: Path) -> None:
    base = _write(tmp_path, "base.toml", BASE)
    child = _write(tmp_path, "child.toml", 'extends = "base.toml"\nname = "child"\n\n[params]\nd_model = 64\n'
                                           "layers = [4]\n")
    raw = parse(child)
    assert raw.data == {"format": 1, "name": "child", "params": {"d_model": 64, "heads": 8, "layers": [4]}}
    assert "extends" not in raw.data and ("extends",) not in raw.spans.values
    own, inherited = raw.spans.values[("params", "d_model")], raw.spans.values[("params", "heads")]
    assert (own.file, own.line, own.origin) == (str(child), 5, Origin.FILE)
    assert (inherited.file, inherited.line, inherited.origin) == (str(base), 6, Origin.BASE)
    assert inherited.describe() == f"{base}:6:9 (base file)"
    assert raw.spans.values[("params", "layers", 0)].file == str(child)  # a replaced array forgets the base's spans
    assert ("params", "layers", 2) not in raw.spans.values
    assert set(raw.sources) == {str(base), str(child)}


def test_extends_chain_of_three(tmp_path: Path) -> None:
    """Each base is found relative to the file that names it; '..' is fine inside the top spec's folder."""
    _write(tmp_path, "a.toml", BASE)
    _write(tmp_path, "sub/b.toml", 'extends = "../a.toml"\n[params]\nheads = 4\n')
    c = _write(tmp_path, "c.toml", 'extends = "sub/b.toml"\n[params]\nlayers = []\n')
    raw = parse(c)
    assert raw.data["params"] == {"d_model": 512, "heads": 4, "layers": []}
    assert raw.spans.values[("params", "heads")].file == str(tmp_path / "sub/b.toml")


def test_extends_absolute_path_is_refused(tmp_path: Path) -> None:
    base = _write(tmp_path, "base.toml", BASE)
    child = _write(tmp_path, "child.toml", f'extends = "{base.as_posix()}"\n')
    (d,) = _error(parse, child).diagnostics
    assert d.code == "E004" and "relative path" in d.message and d.span.line == 1


def test_extends_may_not_leave_the_folder_unless_a_search_path_allows(tmp_path: Path) -> None:
    _write(tmp_path, "shared/base.toml", BASE)
    child = _write(tmp_path, "specs/child.toml", 'extends = "../shared/base.toml"\n')
    (d,) = _error(parse, child).diagnostics
    assert d.code == "E004" and "leaves the spec's folder" in d.message and "--search-path" in (d.hint or "")
    assert parse(child, search_paths=[tmp_path / "shared"]).data["params"]["heads"] == 8
    # a search path elsewhere does not help
    assert _error(parse, child, search_paths=[tmp_path / "specs"]).diagnostics[0].code == "E004"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_that_escapes_is_refused(tmp_path: Path) -> None:
    outside = _write(tmp_path, "outside/base.toml", BASE)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "link.toml").symlink_to(outside)
    (specs / "linkdir").symlink_to(tmp_path / "outside", target_is_directory=True)
    for ref in ("link.toml", "linkdir/base.toml"):
        child = _write(specs, "child.toml", f'extends = "{ref}"\n')
        (d,) = _error(parse, child).diagnostics
        assert d.code == "E004" and "leaves the spec's folder" in d.message
        assert parse(child, search_paths=[tmp_path / "outside"]).data["format"] == 1
    # a symlink that stays inside the folder is fine
    _write(specs, "real.toml", BASE)
    (specs / "inside.toml").symlink_to(specs / "real.toml")
    assert parse(_write(specs, "child.toml", 'extends = "inside.toml"\n')).data["name"] == "base"


def test_extends_cycle_and_self_reference(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'format = 1\nextends = "a.toml"\n')
    (d,) = _error(parse, a).diagnostics
    assert d.code == "E004" and "cycle" in d.message and d.span.file == str(tmp_path / "b.toml") and d.span.line == 2
    me = _write(tmp_path, "me.toml", 'extends = "me.toml"\n')
    assert "cycle" in _error(parse, me).diagnostics[0].message


def test_extends_missing_base_or_not_a_string(tmp_path: Path) -> None:
    child = _write(tmp_path, "child.toml", 'format = 1\nextends = "nope.toml"\n')
    (d,) = _error(parse, child).diagnostics
    assert (d.code, d.message, d.span.line, d.span.col) == ("E004", "base spec 'nope.toml' not found", 2, 11)
    child.write_text("extends = 3\n")
    assert _error(parse, child).diagnostics[0].message == "'extends' must be a path string"


def test_error_in_a_base_points_into_the_base(tmp_path: Path) -> None:
    _write(tmp_path, "base.toml", "format = 1\nx = = 1\n")
    child = _write(tmp_path, "child.toml", 'extends = "base.toml"\n')
    (d,) = _error(parse, child).diagnostics
    assert (d.span.file, d.span.line) == (str(tmp_path / "base.toml"), 2)


# -- --set -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("512", 512), ("-3", -3), ("0.1", 0.1), ("1e-5", 1e-5), ("true", True), ("false", False),
    ('"quoted"', "quoted"), ("gelu", "gelu"), ("4 * d_model", "4 * d_model"), ("[1, 2]", [1, 2]),
    ("{ a = 1 }", {"a": 1}), ("", ""),
])
def test_set_parses_values_as_toml_scalars_or_text(text: str, value: object) -> None:
    raw = apply_cli_sets(parse_text(BASE, "base.toml"), [f"params.x={text}"])
    assert raw.data["params"]["x"] == value
    assert type(raw.data["params"]["x"]) is type(value)


def test_set_overrides_creates_keys_and_records_the_command_line() -> None:
    original = parse_text(BASE, "base.toml")
    raw = apply_cli_sets(original, ["params.d_model=64", "train.optim.lr = 3e-4", "params.layers=[]"])
    assert raw.data["params"]["d_model"] == 64 and raw.data["train"] == {"optim": {"lr": 3e-4}}
    for path in [("params", "d_model"), ("train",), ("train", "optim"), ("train", "optim", "lr")]:
        span = raw.key_span(path)
        assert span is not None and span.origin is Origin.CLI, path
    assert raw.spans.values[("params", "d_model")].file == "--set params.d_model=64"
    assert ("params", "layers", 0) not in raw.spans.values  # spans below a replaced value are forgotten
    assert raw.spans.values[("params", "heads")].origin is Origin.FILE
    assert original.data["params"]["d_model"] == 512 and "train" not in original.data  # the input is not changed
    assert raw.spans.values[("params", "d_model")].origin is Origin.CLI
    assert original.spans.values[("params", "d_model")].origin is Origin.FILE


def test_set_through_a_scalar_replaces_it() -> None:
    raw = apply_cli_sets(parse_text(BASE, "base.toml"), ["name.first=1"])
    assert raw.data["name"] == {"first": 1}


@pytest.mark.parametrize("item", ["params.d_model", "=3", "params..x=1", "params.=1", ".x=1"])
def test_malformed_set_is_a_diagnostic(item: str) -> None:
    (d,) = _error(apply_cli_sets, parse_text(BASE, "base.toml"), [item]).diagnostics
    assert d.code == "E005" and item in d.message


def test_set_errors_are_reported_at_the_command_line(tmp_path: Path) -> None:
    spec = _write(tmp_path, "m.toml", 'format = 1\n[params]\nd_model = 8\nheads = 2\n'
                                      '[model]\ninputs = {}\noutputs = {}\nnodes = {}\n')
    err = _error(validate, parse(spec, ["params.d_model=4 * nope", "params.heads=true"]))
    (d,) = err.diagnostics
    assert d.span.origin is Origin.CLI and d.span.file == "--set params.d_model=4 * nope"
    assert err.render().startswith("--set params.d_model=4 * nope: error[E023]: in 'params.d_model': unknown name 'nope'")
