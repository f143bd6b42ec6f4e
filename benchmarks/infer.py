"""Inference: a forward pass to full logits (eval, no gradients), and greedy generation with a KV cache.

Generation compares `transformers`' `generate` (greedy) with the runtime's
`generate_causal` (temperature 0), which `specc generate` runs; both must
produce the same tokens.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from specc.runtime.inference.generate import Sampling, generate_causal
from specc.runtime.batch import Batch

from benchmarks.data import Source
from benchmarks.harness import interleave
from benchmarks.models import Shape, Trio, build
from benchmarks.train import TASKS


def forward_variants(task: str, shape: Shape, device: str, attns: tuple[str, ...] = ("eager", "sdpa")
                     ) -> tuple[dict[str, Callable[[], torch.Tensor]], int]:
    family, names, hf_task = TASKS[task]
    trio = build(family, shape, hf_task, attns, device)
    batch = Source(names, shape.vocab, shape.seq).batch(0, shape.batch).to(torch.device(device))
    return forward_fns(family, trio, batch), shape.batch * shape.seq


def forward_fns(family: str, trio: Trio, batch: Batch) -> dict[str, Callable[[], torch.Tensor]]:
    """Each implementation's forward to full logits on `batch`, in eval mode."""
    x = batch.inputs
    out: dict[str, Callable[[], torch.Tensor]] = {}
    for attn, m in trio.hf.items():
        out[f"transformers {attn}"] = _hf_forward(family, m.eval(), x)
    ours, ref = trio.specc.eval(), trio.ref
    if ref is not None:
        ref.eval()
        out["hand-written"] = (lambda: ref(x["tokens"])[0]) if family == "gpt" else (lambda: ref(x["tokens"], x["segments"])[0])
    if family == "gpt":
        out["specc"] = lambda: ours(tokens=x["tokens"])["logits"]
    else:  # every position through the MLM head, as BertForMaskedLM computes it
        out["specc"] = lambda: ours(tokens=x["tokens"], segments=x["segments"])["mlm_logits"]
    return out


def _hf_forward(family: str, model: Any, x: dict[str, torch.Tensor]) -> Callable[[], torch.Tensor]:
    if family == "gpt":
        return lambda: model(input_ids=x["tokens"]).logits
    return lambda: model(input_ids=x["tokens"], token_type_ids=x["segments"]).logits


@torch.no_grad()
def run_forward(task: str, shape: Shape, reps: int, warmup: int, device: str = "cpu") -> dict[str, Any]:
    fns, tokens = forward_variants(task, shape, device)
    outs = {name: fn() for name, fn in fns.items()}
    ref = next(iter(outs.values()))
    diff = max(float((o - ref).abs().max()) for o in outs.values())
    timings = interleave(fns, reps, warmup, device)
    return {"task": task, "shape": shape.name, "tokens_per_step": tokens, "max_abs_diff": diff,
            "variants": {name: {"time": t.as_dict(), "tokens_per_s": tokens / t.median} for name, t in timings.items()}}


@torch.no_grad()
def run_generate(shape: Shape, prompt_len: int, new_tokens: int, reps: int, warmup: int, device: str = "cpu") -> dict[str, Any]:
    """Greedy continuation of one prompt by `new_tokens` tokens, with each library's KV cache."""
    trio = build("gpt", shape, attns=("sdpa",), device=device)
    hf: Any = trio.hf["sdpa"].eval()
    ours = trio.specc.eval()
    prompt = torch.randint(8, shape.vocab, (1, prompt_len), generator=torch.Generator().manual_seed(0))
    ids = prompt.to(device)
    mask = torch.ones_like(ids)

    def with_hf() -> list[int]:
        out = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                          do_sample=False, pad_token_id=0)
        return out[0, prompt_len:].tolist()

    def with_specc() -> list[int]:
        return generate_causal(ours, trio.graph, prompt[0].tolist(), Sampling(max_new_tokens=new_tokens, temperature=0.0))

    fns = {"transformers sdpa": with_hf, "specc": with_specc}
    same = with_hf() == with_specc()
    timings = interleave(fns, reps, warmup, device)
    return {"task": "gpt-generate", "shape": shape.name, "prompt": prompt_len, "new_tokens": new_tokens, "same_tokens": same,
            "variants": {name: {"time": t.as_dict(), "tokens_per_s": new_tokens / t.median} for name, t in timings.items()}}
