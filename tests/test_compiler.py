"""Compiler behaviour: stable names, repeated blocks, ties, init, node errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import specc
from specc.compiler import NodeError
from specc.compiler.modules import BlockModule, Repeat

SPECS = Path(__file__).resolve().parent.parent / "specs"
TINY_GPT = SPECS / "gpt-tiny.toml"


def test_parameter_names_are_hierarchical_and_match_the_graph() -> None:
    graph = specc.load_graph(TINY_GPT)
    model = specc.compile_model(graph)
    names = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert names == graph.parameter_names()
    assert "h.3.attn.qkv.weight" in names and "ln_f.weight" in names


def test_repeated_block_is_one_class_instantiated_n_times() -> None:
    model = specc.compile_file(TINY_GPT)
    assert isinstance(model.h, Repeat)
    assert len(model.h) == 4 and all(type(layer) is BlockModule for layer in model.h)
    assert len({id(layer) for layer in model.h}) == 4


def test_tied_lm_head_shares_the_embedding_tensor() -> None:
    model = specc.compile_file(TINY_GPT)
    assert model.lm_head.weight is model.wte.weight
    model(tokens=torch.randint(0, 100, (2, 8)))["logits"].sum().backward()
    assert model.wte.weight.grad is not None


def test_init_is_reproducible_from_the_seed_and_follows_the_spec() -> None:
    a = specc.compile_file(TINY_GPT).state_dict()
    b = specc.compile_file(TINY_GPT).state_dict()
    c = specc.compile_file(TINY_GPT, sets=["init.seed=1"]).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["wte.weight"], c["wte.weight"])
    assert torch.equal(a["ln_f.weight"], torch.ones_like(a["ln_f.weight"]))
    assert torch.equal(a["h.0.attn.qkv.bias"], torch.zeros_like(a["h.0.attn.qkv.bias"]))
    # GPT-2's residual projections use std 0.02 / sqrt(2 * layers); the others 0.02.
    assert abs(a["h.0.mlp.fc_out.weight"].std().item() - 0.02 / (2 * 4) ** 0.5) < 1.5e-3
    assert abs(a["h.0.mlp.fc_in.weight"].std().item() - 0.02) < 1.5e-3


def test_runtime_error_names_the_node_and_its_spec_location() -> None:
    model = specc.compile_file(TINY_GPT)
    with pytest.raises(NodeError) as err:
        model(tokens=torch.zeros(1, 300, dtype=torch.long))  # max_seq is 256
    message = str(err.value)
    assert "'wpe'" in message and "gpt2-small.toml:" in message and "exceeds max_len 256" in message


def test_missing_and_unknown_inputs_are_named() -> None:
    model = specc.compile_file(TINY_GPT)
    with pytest.raises(TypeError, match="missing required model input 'tokens'"):
        model()
    with pytest.raises(TypeError, match="unknown model input 'token'"):
        model(token=torch.zeros(1, 2, dtype=torch.long))


def test_padding_mask_and_optional_inputs() -> None:
    model = specc.compile_file(TINY_GPT).eval()
    ids = torch.randint(0, 2048, (2, 10))
    plain = model(tokens=ids)["logits"]
    masked = model(tokens=ids, attention_mask=torch.ones(2, 10, dtype=torch.long))["logits"]
    assert torch.allclose(plain, masked, atol=1e-5)


def test_build_is_on_meta_then_materialised_once() -> None:
    graph = specc.load_graph(TINY_GPT)
    model = specc.compile_model(graph, init=False)
    assert all(p.device.type == "cpu" for p in model.parameters())
