"""GPU checks: the compiled model moves to CUDA and runs in bf16 autocast (skipped without CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import specc
from specc.smoke import example_inputs

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["gpt-tiny.toml", "bert-tiny.toml", "t5-tiny.toml"])
def test_bf16_autocast_forward_backward(name: str) -> None:
    graph = specc.load_graph(SPECS / name)
    model = specc.compile_model(graph, "cuda")
    inputs = {k: v.cuda() for k, v in example_inputs(graph, batch=4, seq=32).items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        outputs = model(**inputs)
    loss = sum(v.float().pow(2).mean() for v in outputs.values() if v.is_floating_point())
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.gpu
def test_cuda_matches_cpu_fp32() -> None:
    graph = specc.load_graph(SPECS / "gpt-tiny.toml")
    cpu = specc.compile_model(graph).eval()
    gpu = specc.compile_model(graph, "cuda").eval()
    inputs = example_inputs(graph, batch=2, seq=32)
    want = cpu(**inputs)["logits"]
    got = gpu(**{k: v.cuda() for k, v in inputs.items()})["logits"].cpu()
    assert (want - got).abs().max() < 1e-3  # TF32 may be on for matmuls
