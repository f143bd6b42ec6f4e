"""Exporting to Hugging Face: `transformers` loads what specc writes and computes the same outputs.

Round trip: transformers → save → specc import → specc export → transformers →
specc import gives identical weights and outputs. A trained specc run exported
with `specc export-hf` loads with `from_pretrained` (the LM class and
AutoModel) and its tokenizer with `AutoTokenizer`. Specs no class can hold are
refused with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import specc
from specc.cli import main
from specc.hf import NotRepresentable, export_model, load_pretrained, write_hf_dir

from hf_cases import BY_ID, PARAMS, TOL, Case, compare, max_diff, padded_batch, save, transformers

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.mark.parametrize("case", PARAMS)
def test_round_trip_gives_identical_weights_and_outputs(case: Case, tmp_path: Path) -> None:
    hf = case.build()
    first = load_pretrained(save(hf, tmp_path / "hf"))
    exported = export_model(first.imported.graph, first.model)
    assert exported.hf_class.name == case.cls
    write_hf_dir(tmp_path / "out", exported)
    back, info = getattr(transformers, case.cls).from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched tensors
    theirs, ours = hf.state_dict(), back.eval().state_dict()
    assert sorted(theirs) == sorted(ours)
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)
    assert compare(case, back, first.model) <= TOL
    second = load_pretrained(tmp_path / "out")
    assert second.imported.text.split("format = 1")[1] == first.imported.text.split("format = 1")[1].replace(
        f'name = "{(tmp_path / "hf").name}"', f'name = "{(tmp_path / "out").name}"')
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("case", [BY_ID[i] for i in ("bert-mlm", "gpt2", "llama", "t5", "bart")], ids=lambda c: c.id)
@torch.no_grad()
def test_auto_model_loads_the_base_model(case: Case, tmp_path: Path) -> None:
    hf = case.build()
    first = load_pretrained(save(hf, tmp_path / "hf"))
    write_hf_dir(tmp_path / "out", export_model(first.imported.graph, first.model))
    base = transformers.AutoModel.from_pretrained(tmp_path / "out").eval()
    ids, mask = padded_batch(10, 6, pad=case.pad)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if case.kind == "seq2seq":
        inputs["decoder_input_ids"] = ids[:, :5]
    keep = mask.bool() if case.kind != "seq2seq" else slice(None)
    reference = transformers.AutoModel.from_pretrained(tmp_path / "hf").eval()(**inputs).last_hidden_state
    assert max_diff(base(**inputs).last_hidden_state[keep], reference[keep]) <= TOL


# -- a trained specc run, through the command line ---------------------------------------------------
TINY_RUN = ["data.max_documents=12", "train.steps=3", "train.batch_size=4", "train.seq_len=32", "train.warmup=1",
            "train.eval_every=3", "train.eval_batches=1", "train.save_every=3", "train.sample_tokens=0"]
LLAMA_RUN = """format = 1
extends = "{base}"
[params]
vocab = 512
layers = 2
[tokenizer]
kind = "bpe"
vocab_size = "vocab"
[data]
source = "default"
[objective.causal_lm]
"""


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny causal-LM runs trained by specc: GPT-2 structure and Llama structure."""
    from specc.runtime.train.jobs import train

    root = tmp_path_factory.mktemp("runs")
    (root / "llama-run.toml").write_text(LLAMA_RUN.format(base=os.path.relpath(SPECS / "llama-tiny.toml", root)))
    small = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.vocab=512"]
    train(str(SPECS / "gpt-tiny.toml"), str(root / "gpt"), None, small + TINY_RUN, quiet=True, say=lambda s: None)
    train(str(root / "llama-run.toml"), str(root / "llama"), None, TINY_RUN, [str(SPECS)], quiet=True, say=lambda s: None)
    return {"gpt": root / "gpt", "llama": root / "llama"}


@pytest.mark.parametrize("run, cls", [("gpt", "GPT2LMHeadModel"), ("llama", "LlamaForCausalLM")])
@torch.no_grad()
def test_export_hf_of_a_trained_run_loads_in_transformers(trained_runs: dict[str, Path], run: str, cls: str,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from specc.runtime.runs.interop import load_checkpoint_model
    from specc.runtime.train.session import load_run

    out = tmp_path / "exported"
    assert main(["export-hf", str(trained_runs[run]), "-o", str(out)]) == 0
    assert f"as {cls}" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["architectures"] == [cls]
    _, ours, _ = load_checkpoint_model(trained_runs[run])
    ids, mask = padded_batch(12, 8, vocab=512)
    lm = getattr(transformers, cls).from_pretrained(out).eval()
    keep = mask.bool()
    assert max_diff(ours(tokens=ids, attention_mask=mask)["logits"][keep], lm(input_ids=ids, attention_mask=mask).logits[keep]) <= TOL
    base = transformers.AutoModel.from_pretrained(out).eval()
    assert max_diff(ours(tokens=ids, attention_mask=mask)["hidden"][keep], base(input_ids=ids, attention_mask=mask).last_hidden_state[keep]) <= TOL

    # The tokenizer: transformers' PreTrainedTokenizerFast encodes as the run's own tokenizer does, and pads.
    _, _, tok = load_run(trained_runs[run])
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert isinstance(hf_tok, transformers.PreTrainedTokenizerFast)
    texts = ["The import statement combines two operations.", "A tuple is immutable", ""]
    assert [hf_tok(t)["input_ids"] for t in texts] == [tok.encode(t) for t in texts]
    batch = hf_tok(texts, padding=True, return_tensors="pt")
    assert batch["input_ids"][2].eq(tok.specials.pad).all() and batch["attention_mask"][2].eq(0).all()


def test_import_of_an_export_is_the_same_spec(trained_runs: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """specc run → export-hf → import-hf: the same architecture, the same weights."""
    from specc.runtime.runs.interop import load_checkpoint_model

    assert main(["export-hf", str(trained_runs["gpt"]), "-o", str(tmp_path / "hf")]) == 0
    assert main(["import-hf", str(tmp_path / "hf"), "-o", str(tmp_path / "gpt.toml")]) == 0
    out = capsys.readouterr().out
    assert "the structure of specs/gpt2-small.toml" in out and f"→ {tmp_path / 'gpt'}" in out
    graph, model, _ = load_checkpoint_model(trained_runs["gpt"])
    graph2, model2, _ = load_checkpoint_model(tmp_path / "gpt")
    assert specc.canonical.architecture_hash(graph) == specc.canonical.architecture_hash(graph2)
    a, b = model.state_dict(), model2.state_dict()
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "gpt" / "tokenizer.json").read_bytes() == (tmp_path / "hf" / "tokenizer.json").read_bytes()


# -- what transformers cannot hold ------------------------------------------------------------------
def test_spec_without_a_transformers_class_is_refused_with_reasons() -> None:
    graph = specc.load_graph(SPECS / "transformer-tiny.toml")
    with pytest.raises(NotRepresentable) as err:
        export_model(graph, specc.compile_model(graph))
    lines = str(err.value).splitlines()
    assert lines[:5] == [
        "no transformers class represents this spec: no supported family (bart, bert, distilbert, gpt2, llama, roberta, "
        "t5) has this architecture",
        "the closest is bart (as in the shipped bart-base.toml); what blocks it:",
        "  - uses sinusoidal_positions ×2, which bart has none of",
        "  - bart has learned_positions ×2, which the spec has none of",
        "  - feed_forward activation: 'relu' in the spec, 'gelu' in bart",
    ]
    assert lines[5].startswith("the other families: ") and "gpt2 (gpt2-small.toml): " in lines[5]


def test_an_encoder_no_family_has_is_refused_with_the_closest_family() -> None:
    """The newcomer's pre-LN RMSNorm / rotary / GQA / SwiGLU encoder: no node-name mismatches, the blocking differences."""
    graph = specc.load_graph(SPECS.parent / "tests" / "objective_specs" / "mlm-without-segments.spec")
    with pytest.raises(NotRepresentable) as err:
        export_model(graph, specc.compile_model(graph))
    lines = str(err.value).splitlines()
    assert lines[1:5] == [
        "the closest is llama (as in the shipped smollm2-135m.toml); what blocks it:",
        "  - uses mlm_head ×1, which llama has none of",
        "  - llama has lm_head ×1, which the spec has none of",
        "  - attention causal: False in the spec, True in llama",
    ]
    assert "found no such node" not in str(err.value)


def test_a_changed_reference_spec_names_what_differs() -> None:
    # GPT-2 with a pre-norm LayerNorm that has no bias: no GPT-2 config holds it.
    graph = specc.load_graph(SPECS / "gpt-tiny.toml", ["blocks.decoder_layer.nodes.ln_1.bias=false"])
    with pytest.raises(NotRepresentable, match=r"the closest is gpt2 \(GPT2LMHeadModel\); what blocks it:\n"
                                               r"  - layer_norm bias: False / True in the spec, True in gpt2\n"):
        export_model(graph, specc.compile_model(graph))


def test_cli_errors_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hf = BY_ID["gpt2"].build()
    save(hf, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "adapter_size": 8}))
    assert main(["import-hf", str(tmp_path / "hf"), "-o", str(tmp_path / "m.toml")]) == 1
    err = capsys.readouterr().err
    assert "unknown config field 'adapter_size' = 8" in err and "Traceback" not in err
    assert main(["import-hf", str(tmp_path / "hf"), "-o", str(tmp_path / "m.toml"), "--allow-unknown", "adapter_size"]) == 0
    assert main(["import-hf", str(tmp_path / "hf"), "-o", str(tmp_path / "m.toml")]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["export-hf", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x")]) == 1
    assert "run directory not found" in capsys.readouterr().err
    assert main(["import-hf", str(tmp_path / "nowhere"), "-o", str(tmp_path / "y.toml")]) == 1
    assert "nowhere: not a directory" in capsys.readouterr().err
    graph = specc.load_graph(SPECS / "transformer-tiny.toml")
    run = tmp_path / "transformer-run"
    from specc.runtime.runs.interop import save_imported  # any complete checkpoint will do
    save_imported(run, graph, specc.compile_model(graph), tmp_path / "hf", "none")
    assert main(["export-hf", str(run), "-o", str(tmp_path / "z")]) == 1
    assert "error: no transformers class represents this spec:" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "m.toml")]) == 0


def test_import_hf_writes_the_dsl_too(tmp_path: Path) -> None:
    save(BY_ID["llama"].build(), tmp_path / "hf")
    assert main(["import-hf", str(tmp_path / "hf"), "-o", str(tmp_path / "llama.spec"), "--no-weights"]) == 0
    assert main(["import-hf", str(tmp_path / "hf"), "-o", str(tmp_path / "llama.toml"), "--no-weights"]) == 0
    assert not (tmp_path / "llama").exists()  # --no-weights: the spec only
    dsl, toml = specc.load_graph(tmp_path / "llama.spec"), specc.load_graph(tmp_path / "llama.toml")
    assert specc.canonical.architecture_hash(dsl) == specc.canonical.architecture_hash(toml)
