"""Attention layers of one stack share one masked position bias (T5), with unchanged results.

The first layer combines the stack's relative-position bias with the padding (and causal) mask;
the others reuse that tensor instead of building their own (B, H, T, S) copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import specc
from specc.ops import attention

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _run(model: torch.nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    src, tgt = torch.randint(5, 2048, (2, 11), generator=gen), torch.randint(5, 2048, (2, 7), generator=gen)
    src_mask = torch.ones_like(src)
    src_mask[1, 6:] = 0
    tgt_mask = torch.ones_like(tgt)
    tgt_mask[0, 5:] = 0
    out = model(src=src, src_mask=src_mask, tgt=tgt, tgt_mask=tgt_mask)["logits"]
    out.sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def test_layers_share_one_masked_bias_and_results_do_not_change(monkeypatch: pytest.MonkeyPatch) -> None:
    model = specc.compile_file(SPECS / "t5-tiny.toml").eval()
    made = []
    real = attention.shared_mask
    monkeypatch.setattr(attention, "shared_mask", lambda bias, key, make: real(bias, key, lambda: made.append(1) or make()))
    shared_out, shared_grads = _run(model)
    assert len(made) == 2  # the encoder's and the decoder's self-attention bias, not one per layer

    model.zero_grad(set_to_none=True)
    monkeypatch.setattr(attention, "shared_mask", lambda bias, key, make: make())  # every layer its own
    own_out, own_grads = _run(model)
    assert torch.equal(shared_out, own_out)
    for a, b in zip(shared_grads, own_grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
