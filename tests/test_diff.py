"""`specc diff`: parameter deltas against compiled models, compatibility tables against real loading,
block alignment, the three output forms, and a checkpoint as one side."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import specc
from specc.canonical import canonical_json
from specc.cli import main
from specc.diff import diff_graphs, render_markdown, render_text, to_json
from specc.graph import LayerGraph
from specc.runtime.runs import checkpoint, lineage
from specc.runtime.runs.checkpoint import TrainState
from specc.runtime.train.warm_start import load_fitting

SPECS = Path(__file__).resolve().parent.parent / "specs"

PAIRS = [
    ("gpt-tiny.toml", "gpt2-small.toml"),
    ("bert-tiny.toml", "bert-base-pretraining.toml"),
    ("t5-tiny.toml", "t5-small.toml"),
    ("transformer-tiny.toml", "transformer-base.toml"),
    ("bert-base.toml", "bert-large.toml"),
    ("gpt2-small.toml", "gpt2-small-gqa-swiglu.toml"),
]
BIG_SOURCES = {"bert-base.toml", "gpt2-small.toml"}  # a real checkpoint of these is 0.5 GB: slow

# The same relation as the big pairs at a size that saves and loads in a blink: both sides
# shrink alike, and what differs between them still differs (widths, depth, kv heads, FFN).
SMALL = ["params.vocab=96", "params.max_seq=16"]
SCALED = {
    ("bert-base.toml", "bert-large.toml"): (SMALL + ["params.d_model=32", "params.heads=2", "params.layers=2"],
                                            SMALL + ["params.d_model=48", "params.heads=3", "params.layers=4"]),
    ("gpt2-small.toml", "gpt2-small-gqa-swiglu.toml"): (SMALL + ["params.d_model=48", "params.heads=8", "params.layers=2"],
                                                        SMALL + ["params.d_model=48", "params.heads=8", "params.layers=2"]),
}


def graph(name: str, sets: list[str] | None = None) -> LayerGraph:
    return specc.load_graph(SPECS / name, sets or [])


def compiled_count(g: LayerGraph) -> int:
    return sum(p.numel() for p in specc.compile_model(g, device="meta", init=False).parameters())


# -- parameter and FLOP deltas ----------------------------------------------------------------
@pytest.mark.parametrize("old, new", PAIRS)
def test_parameter_deltas_equal_the_compiled_models(old: str, new: str) -> None:
    a, b = graph(old), graph(new)
    diff = diff_graphs(a, b, old, new)
    assert (diff.params_old, diff.params_new) == (compiled_count(a), compiled_count(b))
    assert sum(g.params_new - g.params_old for g in diff.groups) == diff.params_new - diff.params_old
    assert sum(g.params_new for g in diff.groups) == diff.params_new
    assert sum(g.flops_new - g.flops_old for g in diff.groups) == diff.flops_new - diff.flops_old
    assert not diff.same_architecture


def test_bert_base_to_large_reads_like_an_engineer_would_say_it() -> None:
    diff = diff_graphs(graph("bert-base.toml"), graph("bert-large.toml"), "bert-base", "bert-large")
    assert diff.headline[:5] == ["depth 12 → 24", "width 768 → 1024", "FFN 3072 → 4096", "heads 12 → 16",
                                 "+225.7 M parameters (109.5 M → 335.1 M)"]
    assert diff.params_new == 335_141_888  # BertModel, bert-large-uncased
    assert diff.headline[-1] == "no tensor of the old checkpoint loads as is"
    layer = next(g for g in diff.groups if g.name == "layer")
    assert layer.layers == "12 → 24: added layer.12–23"
    d_model = next(c for c in diff.params if c.path == "params.d_model")
    assert (d_model.old, d_model.new) == (768, 1024)
    assert d_model.new_at == f"{SPECS / 'bert-large.toml'}:10:11"
    d_ff = next(c for c in diff.params if c.path == "params.d_ff")
    assert (d_ff.old, d_ff.new, d_ff.expr) == (3072, 4096, "4 * d_model")
    assert "(base file)" in d_ff.new_at  # written in bert-base.toml, which bert-large extends


def test_gqa_swiglu_variant() -> None:
    diff = diff_graphs(graph("gpt2-small.toml"), graph("gpt2-small-gqa-swiglu.toml"), "a", "b")
    assert "attention now uses 4 kv heads" in diff.headline
    assert "FFN activation gelu_new → swiglu" in diff.headline and "FFN 3072 → 2048" in diff.headline
    nodes = {n.node: n for n in diff.nodes}
    assert set(nodes) == {"h.{0–11}.attn", "h.{0–11}.mlp"} and nodes["h.{0–11}.attn"].count == 12
    assert nodes["h.{0–11}.attn"].details == ["kv_heads default → 4"]
    fits = {t.name: t.fit for t in diff.compat.tensors}
    assert fits["h.3.attn.o.weight"] == "loads" and fits["h.3.attn.qkv.weight"] == "reshaped"
    assert fits["h.3.mlp.fc_gate.weight"] == "new" and fits["h.3.mlp.fc_out.bias"] == "loads"
    assert diff.headline[-1].startswith("wte, wpe, ln_f and part of every layer of h still load")


# -- the compatibility table, checked by loading --------------------------------------------------
def save_checkpoint(g: LayerGraph, run: Path) -> Path:
    """A real checkpoint of `g` (seeded init), as the trainer writes it."""
    model = specc.compile_model(g)
    optimizer = torch.optim.AdamW(model.parameters())
    return checkpoint.save(run, TrainState(arch_hash="", runtime_hash=""), model, optimizer, canonical_json(g.spec), "", 1)


def assert_table_matches_loading(a: LayerGraph, b: LayerGraph, tmp_path: Path, zeroed: bool = True) -> list[tuple[str, str]]:
    """Load a checkpoint of A into B as the table says; every tensor must come out as the table predicts.

    With `zeroed`, B starts all zeros so that a tensor the table keeps out is seen to stay untouched
    (filling a full-size model costs seconds; without it the shapes and loaded values are still checked).
    """
    ckpt = save_checkpoint(a, tmp_path / "a")
    diff = lineage.checkpoint_diff(ckpt, b, "b")
    stored = load_file(str(ckpt / "model.safetensors"))
    _, in_file = lineage.stored_tensors(ckpt, a)
    model = specc.compile_model(b, init=False)
    if zeroed:
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
    load_fitting(model, ckpt / "model.safetensors", diff.compat, in_file)
    params = dict(model.named_parameters())
    table = {t.name: t for t in diff.compat.tensors if t.fit != "dropped"}
    assert set(table) == set(params) == set(b.parameter_names())
    for name, row in table.items():
        assert row.new_shape == list(params[name].shape), name
        if row.fit == "loads":
            assert torch.equal(params[name], stored[in_file[row.source]]), name
            continue
        if zeroed:
            assert not params[name].any(), f"{name} ({row.fit}) was written"
        if row.fit == "reshaped":
            assert list(stored[in_file[row.source]].shape) == row.old_shape != row.new_shape
        else:
            assert row.source is None and name not in a.parameter_names()
    dropped = {t.name for t in diff.compat.tensors if t.fit == "dropped"}
    assert dropped == set(a.parameter_names()) - {t.source for t in table.values() if t.source}
    return [(t.name, t.fit) for t in diff.compat.tensors]


@pytest.mark.parametrize("old, new", [pytest.param(o, n, marks=pytest.mark.slow) if o in BIG_SOURCES else (o, n)
                                      for o, n in PAIRS])
def test_compatibility_table_matches_real_loading(old: str, new: str, tmp_path: Path) -> None:
    assert_table_matches_loading(graph(old), graph(new), tmp_path, zeroed=False)


def _shape_of_table(rows: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(re.sub(r"\.\d+\.", ".*.", name), fit) for name, fit in rows}


@pytest.mark.parametrize("old, new", list(SCALED))
def test_compatibility_table_of_the_big_pairs_by_loading_a_scaled_copy(old: str, new: str, tmp_path: Path) -> None:
    """The scaled pair loads as its table says, and its table has the full-size table's shape."""
    sets_a, sets_b = SCALED[(old, new)]
    rows = assert_table_matches_loading(graph(old, sets_a), graph(new, sets_b), tmp_path)
    full = diff_graphs(graph(old), graph(new)).compat.tensors
    assert _shape_of_table(rows) == _shape_of_table([(t.name, t.fit) for t in full])


def test_tied_tensors_stored_under_an_alias_still_match() -> None:
    """safetensors keeps one name of a tied pair (here lm_head.weight); the table still sees wte.weight."""
    g = graph("gpt-tiny.toml")
    diff = diff_graphs(g, g, "a", "b")
    assert diff.empty and diff.headline == ["no differences"]


def test_a_checkpoint_as_one_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = save_checkpoint(graph("gpt-tiny.toml"), tmp_path / "run")
    assert main(["diff", str(SPECS / "gpt-tiny.toml"), str(tmp_path / "run"), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["same_architecture"] and all(t["fit"] == "loads" for t in same["compat"]["tensors"])
    assert same["compat"]["source"] == str(ckpt)
    assert main(["diff", str(tmp_path / "run"), str(SPECS / "gpt2-small.toml"), "--exit-code"]) == 1
    text = capsys.readouterr().out
    assert f"tensors of {ckpt} in {SPECS / 'gpt2-small.toml'}" in text


# -- alignment ------------------------------------------------------------------------------
LAYERED = """
format = 1
[params]
d = 16
[blocks.layer]
params = {{ ff = 32 }}
inputs = ["x"]
output = "out"
[blocks.layer.nodes]
ff = {{ op = "feed_forward", in = "x", d_model = "d", d_ff = "ff" }}
out = {{ op = "add", in = ["x", "ff"] }}
[model.inputs]
tokens = "int[batch, seq]"
[model.outputs]
y = "h"
[model.nodes]
emb = {{ op = "embedding", in = "tokens", vocab = 10, dim = "d" }}
h = {{ block = "layer", in = ["emb"], repeat = {n}, overrides = [{overrides}] }}
"""


def layered(tmp_path: Path, name: str, n: int, overrides: str) -> LayerGraph:
    path = tmp_path / name
    path.write_text(LAYERED.format(n=n, overrides=overrides))
    return specc.load_graph(path)


def test_inserting_one_layer_is_one_insertion(tmp_path: Path) -> None:
    # Layers 2 and 4 are wider; a plain layer is inserted before layer 2, so they move to 3 and 5.
    # (Inserted at 0, 1 or 2 is the same model; the alignment puts it last among equals.)
    a = layered(tmp_path, "a.toml", 5, '{ layers = "2", with = { ff = 64 } }, { layers = "4", with = { ff = 64 } }')
    b = layered(tmp_path, "b.toml", 6, '{ layers = "3", with = { ff = 64 } }, { layers = "5", with = { ff = 64 } }')
    diff = diff_graphs(a, b, "a", "b")
    assert [(n.node, n.status) for n in diff.nodes] == [("h.2", "added")]
    h = next(g for g in diff.groups if g.name == "h")
    assert h.layers == "5 → 6: inserted h.2"
    assert diff.compat.suggested == ["h.3:6=h.2:5"]
    text = render_text(diff)
    assert "--map h.3:6=h.2:5" in text
    # With the suggested mapping every old tensor lands where its layer went, and all of them load.
    mapped = lineage_free_compat(a, b, ["h.3:6=h.2:5"])
    assert {t.source for t in mapped.tensors if t.fit == "loads"} == set(a.parameter_names())
    assert mapped.count("dropped") == 0
    assert {t.name for t in mapped.tensors if t.fit == "reshaped"} == {"h.2.ff.fc_in.weight", "h.2.ff.fc_in.bias",
                                                                       "h.2.ff.fc_out.weight"}  # the new layer, by name


def lineage_free_compat(a: LayerGraph, b: LayerGraph, mapping: list[str]):  # noqa: ANN201
    from specc.diff import compat_table

    return compat_table(a.parameter_names(), b.parameter_names(), mapping)


def test_a_changed_run_of_layers_is_one_line(tmp_path: Path) -> None:
    a = layered(tmp_path, "a.toml", 6, "")
    b = layered(tmp_path, "b.toml", 6, '{ layers = "2:5", with = { ff = 48 } }')
    diff = diff_graphs(a, b, "a", "b")
    assert [(n.node, n.details) for n in diff.nodes] == [("h.{2–4}.ff", ["d_ff 32 → 48"])]


def test_layer_mappings_parse_and_refuse_mismatched_ranges() -> None:
    from specc.diagnostics import UserError
    from specc.diff import parse_mapping

    assert parse_mapping(["h.2:4=h.0:2", "dec=h"]) == [("h.2.", "h.0."), ("h.3.", "h.1."), ("dec.", "h.")]
    for bad in ("h.0:4=h.0:2", "h.0:2=h", "h.3", "=h", "h.4:2=h.0:2"):
        with pytest.raises(UserError):
            parse_mapping([bad])


# -- runtime sections and output forms --------------------------------------------------------------
def test_runtime_changes_are_listed_with_where_they_are_set() -> None:
    a = graph("gpt-tiny.toml")
    b = specc.load_graph(SPECS / "gpt-tiny.toml", ["train.lr=0.01", "objective.causal_lm.weight=0.5"])
    diff = diff_graphs(a, b, "a", "b")
    assert diff.same_architecture and not diff.nodes and not diff.groups[0].status != "same"
    changes = {c.path: c for c in diff.sections}
    assert (changes["train.lr"].old, changes["train.lr"].new) == (3e-3, 0.01)
    assert changes["train.lr"].new_at == "--set train.lr=0.01 (command line)"
    assert changes["objective.causal_lm.weight"].status == "added"
    assert set(diff.section_hashes) == {"train", "objective"}
    assert diff.headline[0] == "same architecture"


def test_text_markdown_and_json() -> None:
    diff = diff_graphs(graph("bert-base.toml"), graph("bert-large.toml"), "bert-base.toml", "bert-large.toml")
    text = render_text(diff)
    assert text.splitlines()[0] == "specc diff bert-base.toml → bert-large.toml"
    assert "\x1b[" not in text and "\x1b[" in render_text(diff, colour=True)
    assert "  + layer.{12–23}" in text and "layer.{0–11}.ffn.fc_in.weight" in text
    md = render_markdown(diff)
    assert md.startswith("### `bert-base.toml` → `bert-large.toml`")
    assert "| **total** | 109,482,240 | 335,141,888 | +225,659,648 |" in md
    data = json.loads(to_json(diff))
    assert data["params_new"] - data["params_old"] == 225_659_648
    assert {t["fit"] for t in data["compat"]["tensors"]} == {"reshaped", "new"}


def test_diff_command_forms(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(SPECS / "gpt2-small.toml"), str(SPECS / "gpt2-small-gqa-swiglu.toml")
    assert main(["diff", a, b]) == 0
    assert "attention now uses 4 kv heads" in capsys.readouterr().out
    assert main(["diff", a, b, "--markdown"]) == 0
    assert "#### Checkpoint compatibility" in capsys.readouterr().out
    assert main(["diff", a, b, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new_hash"] != ""
    assert main(["diff", a, a, "--exit-code"]) == 0
