"""The chunked vocabulary cross-entropy and the deferred heads it reads.

A compiled LM/MLM head is deferred (`Outputs.deferred`); the causal-LM and MLM
objectives then compute the loss in chunks from the head's features and
weight. Loss, gradients and accuracy must equal the plain path's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import specc
from specc.runtime.batch import LossSums
from specc.runtime.objectives import vocab_ce
from specc.runtime.objectives.base import cross_entropy_sum
from specc.runtime.objectives.vocab_ce import linear_cross_entropy_sum, vocab_cross_entropy
from specc.compiler import DeferredLogits, Outputs

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("ignored", [False, True])
def test_chunked_loss_and_gradients_equal_the_plain_path(monkeypatch: pytest.MonkeyPatch, bias: bool, ignored: bool) -> None:
    monkeypatch.setattr(vocab_ce, "MIN_ROWS", 16)
    monkeypatch.setattr(vocab_ce, "CHUNK_BYTES", 16 * 4 * 300)  # 16 rows a chunk: 70 rows → 5 chunks, the last short
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(300, 12, generator=gen).requires_grad_()
    b = torch.randn(300, generator=gen).requires_grad_() if bias else None
    h = torch.randn(70, 12, generator=gen).requires_grad_()
    y = torch.randint(0, 300, (70,), generator=gen)
    if ignored:
        y[::4] = -100
    leaves = [t for t in (h, w, b) if t is not None]

    logits = F.linear(h, w, b)
    want = F.cross_entropy(logits, y, reduction="sum")
    want_grads = torch.autograd.grad(want * 0.5, leaves)
    want_hits = int(((logits.argmax(1) == y) & (y != -100)).sum())

    total, hits = linear_cross_entropy_sum(DeferredLogits(h, w, b), y, count_hits=True)
    grads = torch.autograd.grad(total * 0.5, leaves)
    assert total.item() == pytest.approx(want.item(), rel=1e-6)
    assert int(hits) == want_hits
    for got, ref in zip(grads, want_grads):
        assert torch.allclose(got, ref, atol=1e-6, rtol=1e-5)


def test_without_gradients_only_the_loss_is_computed() -> None:
    w, h, y = torch.randn(50, 8), torch.randn(20, 8), torch.randint(0, 50, (20,))
    with torch.no_grad():
        total, _ = linear_cross_entropy_sum(DeferredLogits(h, w, None), y)
    assert total.item() == pytest.approx(F.cross_entropy(h @ w.t(), y, reduction="sum").item(), rel=1e-6)


@pytest.mark.parametrize("spec, output", [("gpt-tiny.toml", "logits"), ("bert-tiny.toml", "mlm_logits")])
def test_deferred_head_gives_the_eager_logits(spec: str, output: str) -> None:
    model = specc.compile_file(SPECS / spec).eval()
    tokens = torch.randint(0, 2048, (2, 9), generator=torch.Generator().manual_seed(1))
    inputs = {"tokens": tokens} if spec.startswith("gpt") else {"tokens": tokens, "segments": torch.zeros_like(tokens)}
    out = model(**inputs)
    assert isinstance(out, Outputs) and set(out) == set(model.output_names)
    head = out.deferred(output)
    assert head is not None and head.weight is model.get_submodule(model._deferred[0].name).projection()[0]
    logits = out[output]
    assert out.deferred(output) is None  # computed now: a loss reads the tensor
    with torch.no_grad():
        eager = torch.compile(model, backend="eager")(**inputs)[output]  # not deferred while compiling
    assert isinstance(eager, torch.Tensor) and torch.equal(logits, eager)


def test_objective_loss_equals_plain_cross_entropy_of_the_logits() -> None:
    model = specc.compile_file(SPECS / "gpt-tiny.toml").eval()  # no dropout: both passes see the same model
    tokens = torch.randint(0, 2048, (2, 9), generator=torch.Generator().manual_seed(2))
    labels = tokens.roll(-1, 1)
    fused, plain = LossSums(), LossSums()
    a = vocab_cross_entropy(model(tokens=tokens), "logits", labels, fused, "lm")
    b = cross_entropy_sum(model(tokens=tokens)["logits"], labels, plain, "lm")
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    assert fused.counts == plain.counts and fused.sums["lm"] == pytest.approx(plain.sums["lm"], rel=1e-6)
