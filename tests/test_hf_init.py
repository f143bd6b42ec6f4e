"""Initialisation: a T5 spec starts where transformers' T5 starts (`_init_weights` at factor 1).

Each tensor of a freshly compiled spec, exported under transformers' names, has
the standard deviation of the same tensor of a freshly built transformers
model. The query is where they differed: T5's attention logits are unscaled,
and T5 folds the 1/sqrt(head_dim) into the query's init; without it the
logits start sqrt(head_dim) times too large and the softmax saturated.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import specc
from hf_cases import transformers
from specc.hf import export_model

SPECS = Path(__file__).resolve().parent.parent / "specs"  # as the other tests find the specs
SMALL = ["params.layers=2", "params.d_model=128", "params.heads=4", "params.head_dim=32", "params.d_ff=256",
         "params.vocab=512"]


@pytest.mark.parametrize("spec", ["t5-small.toml", "t5-v1_1-small.toml"])
def test_t5_initialisation_has_transformers_scales(spec: str) -> None:
    graph = specc.load_graph(str(SPECS / spec), SMALL)
    exported = export_model(graph, specc.compile_model(graph))
    config = transformers.AutoConfig.for_model(**{k: v for k, v in exported.config.items() if k != "architectures"})
    torch.manual_seed(0)
    reference = getattr(transformers, exported.config["architectures"][0])(config).state_dict()
    compared = 0
    for name, ours in exported.state.items():
        if ours.numel() < 4096 or name not in reference:  # too few values for a close estimate of the std
            continue
        ratio = float(ours.float().std()) / float(reference[name].float().std())
        assert 0.93 < ratio < 1.07, f"{name}: std {ratio:.2f} times transformers'"
        compared += 1
    assert compared >= 20
