"""Activation checkpointing declared in [train]: the same loss and gradients, fewer saved activations,
and a clear error for a name that is not a block of the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import specc
from specc.compiler import recompute_activations
from specc.diagnostics import SpecError
from specc.runtime.train.session import plan_from_spec

from runtools import GPT_TINY

SMALL = ["params.layers=2", "params.d_model=32", "params.heads=2", "params.vocab=64", "params.dropout=0.1"]


def _loss_and_grads(blocks: list[str], saved: list[int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One training forward + backward of gpt-tiny (dropout on), counting the bytes autograd keeps."""
    model = specc.compile_model(specc.load_graph(GPT_TINY, SMALL))
    recompute_activations(model, blocks)
    model.train()
    tokens = torch.randint(0, 64, (3, 16), generator=torch.Generator().manual_seed(1))

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    torch.manual_seed(7)  # the dropout masks
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(tokens=tokens)["logits"]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 64), tokens[:, 1:].reshape(-1))
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_checkpointed_blocks_give_the_same_loss_and_gradients_and_keep_less() -> None:
    plain_saved: list[int] = []
    ckpt_saved: list[int] = []
    loss, grads = _loss_and_grads([], plain_saved)
    loss_c, grads_c = _loss_and_grads(["h"], ckpt_saved)
    assert torch.equal(loss, loss_c)  # dropout drew the same masks in the recomputation
    assert grads.keys() == grads_c.keys() and len(grads) > 10
    for name in grads:
        torch.testing.assert_close(grads_c[name], grads[name], rtol=0, atol=0, msg=name)
    assert sum(ckpt_saved) < 0.5 * sum(plain_saved), (sum(ckpt_saved), sum(plain_saved))


def test_recomputation_is_off_in_eval_and_with_a_cache() -> None:
    model = specc.compile_model(specc.load_graph(GPT_TINY, SMALL))
    recompute_activations(model, ["h"])
    tokens = torch.randint(0, 64, (1, 8))
    with torch.no_grad():
        eval_logits = model.eval()(tokens=tokens)["logits"]
    reference = specc.compile_model(specc.load_graph(GPT_TINY, SMALL)).eval()
    with torch.no_grad():
        assert torch.equal(eval_logits, reference(tokens=tokens)["logits"])


def test_train_section_declares_it_and_the_engine_applies_it() -> None:
    from specc.runtime.train.parallel import Engine

    plan = plan_from_spec(GPT_TINY, [*SMALL, 'train.activation_checkpointing=["h"]'])
    assert plan.config.train.activation_checkpointing == ["h"]
    model = specc.compile_model(plan.graph)
    Engine(model, None, plan.config.train, torch.device("cpu"), sample=lambda: None)  # type: ignore[arg-type]
    assert all(layer._recompute for layer in model.h)


def test_a_name_that_is_not_a_block_is_an_error_at_its_line(tmp_path: Path) -> None:
    for base in ("gpt-tiny.toml", "gpt2-small.toml"):
        shutil.copy(Path(GPT_TINY).parent / base, tmp_path / base)
    spec = tmp_path / "ckpt.toml"
    spec.write_text('format = 1\nextends = "gpt-tiny.toml"\n\n[train]\nactivation_checkpointing = ["hh", "ln_f"]\n')
    with pytest.raises(SpecError) as err:
        plan_from_spec(spec)
    found = [d for d in err.value.diagnostics if d.code == "E069"]
    assert [d.message.split("'")[1] for d in found] == ["hh", "ln_f"]
    assert all(d.span is not None and d.span.line == 5 for d in found)
    assert "did you mean 'h'" in (found[0].hint or "")
