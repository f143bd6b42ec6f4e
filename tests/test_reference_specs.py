"""Reference specs reproduce the published parameter counts; tiny variants stay tiny and keep the structure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import specc
from specc.graph import LayerGraph

SPECS = Path(__file__).resolve().parent.parent / "specs"

PUBLISHED = {
    "bert-base.toml": 109_482_240,  # BertModel, bert-base-uncased
    "bert-base-pretraining.toml": 110_106_428,  # BertForPreTraining
    "gpt2-small.toml": 124_439_808,  # GPT2LMHeadModel, LM head tied
    "t5-small.toml": 60_506_624,  # T5ForConditionalGeneration
    "transformer-base.toml": 63_082_496,  # Vaswani et al. 2017, base
}

TINY = {
    "gpt-tiny.toml": "gpt2-small.toml",
    "bert-tiny.toml": "bert-base-pretraining.toml",
    "t5-tiny.toml": "t5-small.toml",
    "transformer-tiny.toml": "transformer-base.toml",
}


def _unique_params_compiled(graph: LayerGraph) -> int:
    """Parameters of the compiled module (ties counted once), built on the meta device."""
    model = specc.compile_model(graph, device="meta", init=False)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("spec, expected", PUBLISHED.items())
def test_published_parameter_count(spec: str, expected: int) -> None:
    graph = specc.load_graph(SPECS / spec)
    assert graph.param_count() == expected
    assert _unique_params_compiled(graph) == expected


@pytest.mark.parametrize("spec", PUBLISHED)
def test_graph_parameter_names_match_the_module(spec: str) -> None:
    graph = specc.load_graph(SPECS / spec)
    model = specc.compile_model(graph, device="meta", init=False)
    names = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert names == graph.parameter_names()


@pytest.mark.parametrize("spec, parent", TINY.items())
def test_tiny_variant_is_small(spec: str, parent: str) -> None:
    count = specc.load_graph(SPECS / spec).param_count()
    assert 200_000 <= count <= 5_000_000, f"{spec} has {count:,} parameters"


def _structure(graph: LayerGraph) -> set[tuple[str, str, tuple[str, ...]]]:
    """(node name without layer index, op, tied params) for every node: the shape of a model, not its size."""
    return {(re.sub(r"\.\d+\.", ".*.", n.name), n.op, tuple(sorted(n.ties))) for n in graph.nodes.values()}


@pytest.mark.parametrize("spec, parent", TINY.items())
def test_tiny_variant_keeps_parent_structure(spec: str, parent: str) -> None:
    tiny, full = specc.load_graph(SPECS / spec), specc.load_graph(SPECS / parent)
    assert _structure(tiny) == _structure(full)
    assert tiny.inputs == full.inputs and list(tiny.outputs) == list(full.outputs)


def test_t5_relative_bias_is_computed_once_per_stack() -> None:
    graph = specc.load_graph(SPECS / "t5-small.toml")
    biases = [n.name for n in graph.nodes.values() if n.op == "t5_relative_bias"]
    assert biases == ["encoder_bias", "decoder_bias"]
    readers = {n.inputs.get("bias") for n in graph.nodes.values() if n.op == "attention"}
    assert readers == {"encoder_bias", "decoder_bias", None}  # None: cross-attention has no position bias


def test_transformer_base_ties_source_target_and_output_embeddings() -> None:
    graph = specc.load_graph(SPECS / "transformer-base.toml")
    assert graph.nodes["tgt_embed"].ties == {"weight": "embed.weight"}
    assert graph.nodes["lm_head"].ties == {"weight": "embed.weight"}
    model = specc.compile_model(graph, device="meta", init=False)
    assert model.get_parameter("lm_head.weight") is model.get_parameter("embed.weight")
    assert model.get_parameter("tgt_embed.weight") is model.get_parameter("embed.weight")
