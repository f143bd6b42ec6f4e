"""LoRA as a graph transform: the architecture hash is the base's, adapters hash on their own, `summary`
counts trainable and frozen parameters, `diff` shows adapters as a change, and merging folds the update
into the weights without changing what the model computes."""

from __future__ import annotations

from pathlib import Path

import torch

from specc.canonical import architecture_hash, hashes
from specc.compiler import compile_model
from specc.compiler.adapt import adapter_names, merge
from specc.diff import diff_graphs, render_text
from specc.frontend import parse
from specc.graph import LayerGraph, build_graph
from specc.graph.adapters import linear_layers
from specc.schema import validate
from specc.summary import summary_table

SPECS = Path(__file__).resolve().parent.parent / "specs"

TINY = ["params.layers=2", "params.d_model=32", "params.heads=2", "params.vocab=64"]
LORA = ['adapters.lora.targets=["h.*.attn.qkv", "h.*.mlp.fc_in"]', "adapters.lora.rank=4", "adapters.lora.alpha=8"]


def graph(*sets: str, spec: str = "gpt-tiny.toml") -> LayerGraph:
    return build_graph(validate(parse(SPECS / spec, [*TINY, *sets])))


def test_adapters_leave_the_architecture_hash_and_hash_on_their_own() -> None:
    plain, adapted = graph(), graph(*LORA)
    assert architecture_hash(adapted) == architecture_hash(plain)
    assert "adapters" not in hashes(plain) and "adapters" in hashes(adapted)
    other = graph(*LORA, "adapters.lora.rank=2")
    assert hashes(other)["adapters"] != hashes(adapted)["adapters"]
    assert {k: v for k, v in hashes(other).items() if k != "adapters"} == \
        {k: v for k, v in hashes(adapted).items() if k != "adapters"}


def test_summary_counts_trainable_and_frozen_parameters() -> None:
    g = graph(*LORA, 'adapters.lora.train=["ln_f.*"]')
    assert g.adapters is not None and list(g.adapters.layers) == ["h.0.attn.qkv", "h.0.mlp.fc_in", "h.1.attn.qkv", "h.1.mlp.fc_in"]
    lora = 2 * (4 * (32 + 96) + 4 * (32 + 128))  # rank x (in + out) per adapted layer, two layers
    full = 2 * 32  # ln_f weight and bias
    frozen = g.param_count() - full
    text = summary_table(g)
    assert f"{lora:,} parameters" in text
    assert f"trainable: {lora + full:,}" in text and f"frozen: {frozen:,}" in text
    assert "adapters" not in summary_table(graph())
    model = compile_model(g)
    assert sum(p.numel() for n, p in model.named_parameters() if n in adapter_names(model)) == lora


def test_diff_shows_adapters_as_a_change() -> None:
    text = render_text(diff_graphs(graph(), graph(*LORA)))
    assert "+ adapters.lora.rank" in text and "+ adapters.lora.targets" in text


def test_vocabulary_projections_and_tied_layers_are_not_targets() -> None:
    names = linear_layers(graph())
    assert "lm_head" not in names and "h.0.attn.qkv" in names


def test_merged_and_unmerged_models_agree_and_the_base_init_is_unchanged() -> None:
    plain, adapted = compile_model(graph()), compile_model(graph(*LORA, "adapters.lora.dropout=0.1"))
    base = {n: p for n, p in adapted.named_parameters() if n not in adapter_names(adapted)}
    for name, p in plain.named_parameters():  # adapters draw from their own stream
        assert torch.equal(p, base[name]), name
    tokens = torch.randint(0, 64, (2, 12))
    adapted.eval()
    with torch.no_grad():
        assert torch.equal(adapted(tokens=tokens)["logits"], plain.eval()(tokens=tokens)["logits"])  # B starts at zero
        for name, p in adapted.named_parameters():
            if name.endswith("lora.b"):
                p.normal_(0, 0.5)
        before = adapted(tokens=tokens)["logits"].clone()
        assert not torch.allclose(before, plain(tokens=tokens)["logits"], atol=1e-3)
        assert merge(adapted) == 4 and not adapter_names(adapted)
        assert torch.allclose(adapted(tokens=tokens)["logits"], before, atol=1e-5, rtol=1e-4)
