"""Each performance lever measured on its own.

- vocabulary cross-entropy: specc's step with its chunked loss against the
  same model with the loss on materialised logits (in the training suite);
- fused AdamW: one optimizer step, fused against foreach and per-tensor;
- allocator: the step and the forward of `transformers` and specc in child
  processes with glibc's default malloc and with the settings
  `specc.runtime.train.allocator` applies (which `specc` commands use), alternated;
- dropout: the step at p = 0.1 against p = 0 (CPU SDPA leaves its flash path);
- GELU: the fused tanh GELU against `transformers`' composite `gelu_new`;
- activation checkpointing: specc's step with every layer recomputed in the
  backward against the plain step: peak memory saved, time paid.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

import torch

from specc.compiler import recompute_activations
from specc.ops.layers import ACTIVATIONS

from benchmarks.alloc_child import BENCHES
from benchmarks.data import Source
from benchmarks.harness import interleave, peak_bytes
from benchmarks.models import Shape, build
from benchmarks.train import variants


def adamw(n_params: int, reps: int, tensors: int = 100) -> dict[str, Any]:
    """`optimizer.step()` over `n_params` parameters in `tensors` tensors with gradients set."""
    sizes = [n_params // tensors] * tensors
    variants: dict[str, Any] = {}
    for name, fused, foreach in (("fused", True, None), ("foreach", None, True), ("for-loop", None, False)):
        params = [torch.zeros(s, requires_grad=True) for s in sizes]
        for p in params:
            p.grad = torch.randn(p.numel()) * 1e-3
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=fused, foreach=foreach)
        variants[name] = opt.step
    t = interleave(variants, reps, warmup=1, min_seconds=0.2)
    return {"params": n_params, "variants": {k: {"time": v.as_dict()} for k, v in t.items()}}


def gelu(shape: Shape, reps: int) -> dict[str, Any]:
    """Forward + backward of the FFN activation on a (batch * seq, d_ff) tensor: specc's `gelu_tanh` (PyTorch's
    fused kernel) and `gelu_new` (transformers' rounding, in place, fused backward), against `transformers`'
    composite `gelu_new`, the activation of its GPT-2."""
    from transformers.activations import NewGELUActivation

    x = torch.randn(shape.batch * shape.seq, shape.d_ff, requires_grad=True)

    def run(fn: Any) -> Any:
        return lambda: fn(x).sum().backward()

    fns = {"specc gelu_tanh": run(ACTIVATIONS["gelu_tanh"]), "specc gelu_new": run(ACTIVATIONS["gelu_new"]),
           "gelu_new (transformers)": run(NewGELUActivation())}
    t = interleave(fns, reps, warmup=1, min_seconds=0.2)
    return {"variants": {k: {"time": v.as_dict()} for k, v in t.items()}}


def dropout(shape: Shape, reps: int) -> dict[str, Any]:
    """specc's and `transformers`' causal-LM step at dropout 0.1 and 0, interleaved: what dropout costs each
    (on the CPU, p > 0 also moves SDPA from its flash kernel to the math path)."""
    steps: dict[str, Any] = {}
    for p in (0.0, 0.1):
        s = shape.with_(dropout=p)
        trio = build("gpt", s, attns=("sdpa",))
        source = Source(("causal_lm",), s.vocab, s.seq)
        batch = source.batch(0, s.batch)
        for name, step in variants("gpt-clm", trio, source.objectives, batch, levers=False).items():
            if name in ("specc", "transformers sdpa"):
                step.model.train()
                steps[f"{name} p={p}"] = step
    t = interleave(steps, reps, warmup=1)
    return {name: v.as_dict() for name, v in t.items()}


def allocator(pairs: int, reps: int, tiny: bool = False) -> dict[str, Any]:
    """Causal-LM step, GPT forward and BERT forward of `transformers`, the hand-written model and specc, each in fresh processes of its own, with
    glibc's default malloc and with `specc.runtime.train.allocator`'s settings, alternated; medians over the processes."""
    libraries = ("transformers", "hand-written", "specc")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {m: {lib: [] for lib in libraries} for m in ("default", "tuned")}
    for _ in range(pairs):
        for mode in runs:
            for library in libraries:
                cmd = [sys.executable, "-m", "benchmarks.alloc_child", mode, library, "--reps", str(reps)]
                done = subprocess.run(cmd + (["--tiny"] if tiny else []), capture_output=True, text=True, check=True)
                runs[mode][library].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {"processes": runs}
    for mode, by_library in runs.items():
        out[mode] = {bench: {("transformers sdpa" if lib == "transformers" else lib):
                             {key: statistics.median(r[bench][key] for r in rs) for key in ("s", "faults")}
                             for lib, rs in by_library.items()} for bench in BENCHES}
    return out


def checkpointing(shape: Shape, reps: int) -> dict[str, Any]:
    """specc's causal-LM step with `activation_checkpointing = ["h"]` against the same step without, interleaved."""
    steps: dict[str, Any] = {}
    for recompute in (False, True):
        trio = build("gpt", shape, attns=())
        if recompute:
            recompute_activations(trio.specc, ["h"])
        source = Source(("causal_lm",), shape.vocab, shape.seq)
        step = variants("gpt-clm", trio, source.objectives, source.batch(0, shape.batch), levers=False)["specc"]
        step.model.train()
        steps["recomputed" if recompute else "kept"] = step
    t = interleave(steps, reps, warmup=1)
    return {name: {"time": v.as_dict(), "peak_bytes": peak_bytes(steps[name])} for name, v in t.items()}
