"""The runtime asks the graph and the compiled model by capability, never by op class: the answers match what
asking by class gave (so weight decay, positions and vocabulary are unchanged)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from specc import compile_model, load_graph
from specc.graph.queries import attention_nodes, max_positions, nodes_with, token_vocab
from specc.ops.base import REGISTRY
from specc.ops.embedding import Embedding, LearnedPositions, RelativeBias
from specc.ops.layers import LayerNorm, RMSNorm
from specc.runtime.config import TrainConfig
from specc.runtime.train.optim import param_groups

ROOT = Path(__file__).resolve().parents[2]
SPECS = ["gpt-tiny.toml", "bert-tiny.toml", "t5-tiny.toml", "bart-tiny.toml", "llama-tiny.toml"]


def _no_decay_by_class(model: torch.nn.Module) -> set[int]:
    """The rule optim.py applied before capabilities: by op class, and biases by name."""
    out = set()
    for module in model.modules():
        named = isinstance(module, (LayerNorm, RMSNorm, Embedding, LearnedPositions, RelativeBias))
        out |= {id(p) for name, p in module.named_parameters(recurse=False) if named or name == "bias"}
    return out


@pytest.mark.parametrize("spec", SPECS)
def test_weight_decay_by_capability_equals_by_class(spec: str) -> None:
    model = compile_model(load_graph(ROOT / "specs" / spec), init=False)
    decayed, excluded = param_groups(model, TrainConfig())
    assert {id(p) for p in excluded["params"]} == _no_decay_by_class(model)
    assert decayed["params"] and excluded["params"]


@pytest.mark.parametrize("spec", SPECS)
def test_graph_queries(spec: str) -> None:
    graph = load_graph(ROOT / "specs" / spec)
    learned = [n.params.max_len for n in graph.nodes.values() if n.op == "learned_positions"]
    assert max_positions(graph) == (min(learned) if learned else None)
    assert token_vocab(graph) == graph.spec.params["vocab"]
    assert [name for name, _ in attention_nodes(graph)] == [n.name for n in graph.nodes.values() if n.op == "attention"]
    assert all(n.record.no_decay_kind() == "norm" for n in nodes_with(graph, "norm"))


def test_every_record_that_owns_parameters_of_a_norm_or_table_declares_it() -> None:
    """A norm or embedding op that forgot its capability would have its parameters decayed: the records of ops
    built from the layer library's norms and tables must declare one."""
    for name, record in REGISTRY.items():
        kind = record.no_decay_kind()
        if name in ("layer_norm", "rms_norm"):
            assert kind == "norm", name
        if name in ("embedding", "learned_positions", "t5_relative_bias"):
            assert kind == "embedding", name
