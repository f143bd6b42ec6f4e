"""The text verbs from the command line: fmt, convert, explain, check --json."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def run(*argv: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    for name in ("gpt2-small.toml", "gpt-tiny.toml", "gpt2-small.spec", "gpt-tiny.spec"):
        shutil.copy(SPECS / name, tmp_path / name)
    return tmp_path


# -- fmt ---------------------------------------------------------------------------------------------
def test_fmt_check_passes_on_the_reference_specs() -> None:
    assert run("fmt", "--check", "specs") == (0, "", "")


def test_fmt_check_lists_what_would_change_and_changes_nothing(folder: Path) -> None:
    messy = folder / "sub" / "messy.spec"
    messy.parent.mkdir()
    messy.write_text("params{d=1}\nformat=1 # version\n")
    (folder / "messy.toml").write_text('format=1\n[params]\nd   =   1\n')
    code, out, err = run("fmt", "--check", str(folder))
    assert code == 1 and err == ""
    assert out.splitlines() == [f"would reformat {folder / 'messy.toml'}", f"would reformat {messy}"]
    assert messy.read_text() == "params{d=1}\nformat=1 # version\n"


def test_fmt_of_a_folder_leaves_toml_files_that_are_not_specs_alone(folder: Path) -> None:
    (folder / "pyproject.toml").write_text('[project]\nname="x"   # not a spec\n')
    assert run("fmt", "--check", str(folder)) == (0, "", "")


def test_fmt_rewrites_in_place_and_then_has_nothing_to_do(folder: Path) -> None:
    messy = folder / "messy.spec"
    messy.write_text("params{d=1}\nformat=1 # version\n")
    assert run("fmt", str(messy)) == (0, f"reformatted {messy}\n", "")
    assert messy.read_text() == "format = 1  # version\n\nparams {\n  d = 1\n}\n"
    assert run("fmt", "--check", str(folder)) == (0, "", "")


def test_fmt_diff_prints_a_unified_diff(folder: Path) -> None:
    (folder / "messy.toml").write_text("format=1\n")
    code, out, _ = run("fmt", "--diff", str(folder / "messy.toml"))
    assert code == 1 and "-format=1\n+format = 1\n" in out


def test_fmt_reports_a_file_it_cannot_read_and_goes_on(folder: Path) -> None:
    (folder / "a-broken.spec").write_text("params {\n")
    (folder / "b-messy.spec").write_text("format=1\n")
    code, out, err = run("fmt", "--check", str(folder))
    assert code == 1
    assert "a-broken.spec:1:9: error[E001]: expected '}' to close 'params' (opened at line 1)" in err
    assert out == f"would reformat {folder / 'b-messy.spec'}\n"


def test_fmt_of_a_missing_path_is_an_error() -> None:
    code, _, err = run("fmt", "no/such/place")
    assert code == 1 and "no such file or folder" in err


# -- convert -----------------------------------------------------------------------------------------
def test_convert_both_ways_through_files(folder: Path) -> None:
    assert run("convert", str(folder / "gpt2-small.toml"), "-o", str(folder / "g.spec"))[0] == 0
    assert (folder / "g.spec").read_text() == (SPECS / "gpt2-small.spec").read_text().replace(
        "parameters\n# with the LM head tied to the token embedding. The DSL form of gpt2-small.toml:\n"
        "# `specc convert` turns either into the other, and both build the same graph.\n",
        "parameters\n# with the LM head tied to the token embedding.\n")
    assert run("convert", str(folder / "g.spec"), "-o", str(folder / "back.toml"))[0] == 0
    assert (folder / "back.toml").read_text() == (SPECS / "gpt2-small.toml").read_text()


def test_convert_to_stdout_picks_the_other_form() -> None:
    code, out, _ = run("convert", "specs/gpt-tiny.spec")
    assert code == 0 and out.startswith("# A tiny GPT-2") and '\n[train]\nsteps = 300\n' in out
    code, out, _ = run("convert", "specs/gpt-tiny.spec", "--to", "spec")
    assert out == (SPECS / "gpt-tiny.spec").read_text()


def test_convert_refuses_an_unknown_target_form(folder: Path) -> None:
    code, _, err = run("convert", "specs/gpt-tiny.spec", "-o", str(folder / "x.yaml"))
    assert code == 1 and "unknown spec format '.yaml'" in err


# -- explain -----------------------------------------------------------------------------------------
def test_explain_names_the_base_file_and_the_param_an_expression_reads() -> None:
    code, out, _ = run("explain", "specs/gpt-tiny.spec", "blocks.decoder_layer.nodes.attn.heads")
    assert code == 0
    assert out == ('blocks.decoder_layer.nodes.attn.heads = "heads" → 4  # specs/gpt2-small.spec:29:64 (base file)\n'
                   "    where heads = 4  # specs/gpt-tiny.spec:12:11\n")


def test_explain_a_param_expression_and_a_command_line_override() -> None:
    code, out, _ = run("explain", "specs/gpt-tiny.toml", "params.d_ff", "--set", "params.d_model=64")
    assert out == ('params.d_ff = "4 * d_model" → 256  # specs/gpt2-small.toml:13:8 (base file)\n'
                   "    where d_model = 64  # --set params.d_model=64 (command line)\n")


def test_explain_defaults_built_layers_and_tables() -> None:
    out = run("explain", "specs/gpt-tiny.toml", "model.nodes.wpe.init_std")[1]
    assert out == "model.nodes.wpe.init_std = 0.01  # specs/gpt2-small.toml:48:99 (base file)\n"
    out = run("explain", "specs/gpt-tiny.toml", "model.nodes.ln_f.bias")[1]
    assert out == "model.nodes.ln_f.bias = true  # default\n"
    out = run("explain", "specs/gpt-tiny.toml", "h.3.attn.heads")[1]
    assert out.startswith('h.3.attn.heads = "heads" → 4  # specs/gpt2-small.toml:30:93 (base file)\n')
    out = run("explain", "specs/gpt-tiny.toml", "init")[1]
    assert out == ('init.std = "std" → 0.02  # specs/gpt2-small.toml:21:7 (base file)\n'
                   "    where std = 0.02  # specs/gpt2-small.toml:16:7 (base file)\n"
                   "init.seed = 0  # specs/gpt2-small.toml:22:8 (base file)\n")


def test_explain_quoted_keys_and_array_indices() -> None:
    out = run("explain", "specs/bert-tiny.toml", 'model.nodes.mlm_head.tie."decoder.weight"')[1]
    assert out.startswith('model.nodes.mlm_head.tie."decoder.weight" = "word_embeddings.weight"  # specs/bert-base-pretraining')
    out = run("explain", "specs/gpt-tiny.toml", "model.nodes.h.in.1")[1]
    assert out == 'model.nodes.h.in.1 = "attention_mask"  # specs/gpt2-small.toml:51:46 (base file)\n'


def test_explain_everything_lists_every_value_once() -> None:
    code, out, _ = run("explain", "specs/gpt-tiny.spec")
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(set(lines))
    assert 'tokenizer.vocab_size = vocab' not in out and 'tokenizer.vocab_size = "vocab" → 2048' in out
    assert "train.lr = 3e-3" not in out and "train.lr = 0.003  # specs/gpt-tiny.spec:" in out


def test_explain_an_unknown_key_suggests_the_close_one() -> None:
    code, _, err = run("explain", "specs/gpt-tiny.toml", "params.dmodel")
    assert code == 1
    assert err == "specs/gpt-tiny.toml: error[E009]: no key 'dmodel' in 'params'\n  = hint: did you mean 'd_model'?\n"
    assert "not a key path" in run("explain", "specs/gpt-tiny.toml", "params..x")[2]


def test_explain_still_shows_what_is_written_when_the_spec_has_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.spec").write_text("format = 1\nparams { d = 4 * nope }\n"
                                       "model {\n  input x: int[b]\n  y = add(x, x)\n  output y = y\n}\n")
    code, out, err = run("explain", str(tmp_path / "bad.spec"), "params.d")
    assert code == 0 and out == f'params.d = "4 * nope"  # {tmp_path / "bad.spec"}:2:14\n'
    assert "unknown name 'nope'" in err and "values are shown as written" in err


# -- check --json ------------------------------------------------------------------------------------
def test_check_json_gives_diagnostics_as_data() -> None:
    code, out, err = run("check", "--json", "tests/dsl_errors/25-unknown-op.spec")
    assert code == 1 and err == ""
    assert json.loads(out) == [{
        "file": "tests/dsl_errors/25-unknown-op.spec",
        "range": {"start": {"line": 11, "column": 10}, "end": {"line": 11, "column": 19}},
        "severity": "error", "code": "E030", "message": "unknown op 'layernorm'",
        "hint": "did you mean 'layer_norm'?", "origin": "file",
    }]
    assert run("check", "--json", "specs/gpt2-small.spec") == (0, "[]\n", "")
