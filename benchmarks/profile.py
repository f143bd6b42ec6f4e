"""Where a benchmark's time goes: torch.profiler's per-operator CPU time, side by side for each variant.

`python -m benchmarks.profile forward bert-mlm` (or `step gpt-clm`, `--calls N`, `--top K`) runs each
variant of one benchmark at the small shape after a warm-up and prints, per variant, the milliseconds per
call of each operator group (matrix multiplies, attention, norms, activations, element-wise, copies and
layout, embedding, other) and the top operators. It answers "is the gap in the kernels or around them?":
when the matrix multiplies are the same kernels at the same cost in every variant, a remaining gap can
only come from the other groups.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.infer import forward_variants
from benchmarks.models import SMALL, TINY, Shape
from benchmarks.train import steppers

GROUPS = {  # operator → group; anything else is "other"
    "matmul": ("aten::addmm", "aten::addmm_", "aten::mm", "aten::bmm", "aten::matmul", "aten::baddbmm"),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
                  "aten::_softmax", "aten::_softmax_backward_data"),
    "norm": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
    "activation": ("aten::gelu", "aten::gelu_", "aten::gelu_backward", "aten::tanh", "aten::tanh_backward", "aten::pow"),
    "element-wise": ("aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::div", "aten::sub", "aten::where",
                     "aten::masked_fill", "aten::masked_fill_", "aten::sum", "aten::fill_", "aten::zero_", "aten::sub_",
                     "aten::div_", "aten::exp", "aten::exp_", "aten::amax", "aten::log", "aten::logsumexp"),
    "copies and layout": ("aten::copy_", "aten::clone", "aten::contiguous", "aten::cat", "aten::empty", "aten::empty_strided"),
    "embedding": ("aten::embedding", "aten::index_select", "aten::embedding_dense_backward"),
    "loss": ("aten::_log_softmax", "aten::nll_loss_forward", "aten::_log_softmax_backward_data", "aten::nll_loss_backward"),
    "optimizer and clipping": ("aten::_fused_adamw_", "aten::_foreach_norm", "aten::_foreach_mul_", "aten::linalg_vector_norm"),
}
GROUP_OF = {op: group for group, ops in GROUPS.items() for op in ops}


def callables(kind: str, task: str, shape: Shape) -> dict[str, Callable[[], object]]:
    if kind == "forward":
        return dict(forward_variants(task, shape, "cpu")[0])
    return dict(steppers(task, shape)[0])


def measure(fn: Callable[[], object], calls: int, grad: bool) -> dict[str, float]:
    """Self CPU milliseconds per call of each operator."""
    with torch.set_grad_enabled(grad):
        for _ in range(2):
            fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                fn()
    return {e.key: e.self_cpu_time_total / 1e3 / calls for e in prof.key_averages()}


def grouped(ops: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for op, ms in ops.items():
        out[GROUP_OF.get(op, "other")] += ms
    return dict(out)


def table(per_variant: dict[str, dict[str, float]]) -> list[str]:
    groups = [*GROUPS, "other"]
    names = list(per_variant)
    sums = {name: grouped(ops) for name, ops in per_variant.items()}
    lines = ["| group | " + " | ".join(f"{n} ms" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for g in groups:
        if any(sums[n].get(g, 0) >= 0.05 for n in names):
            lines.append(f"| {g} | " + " | ".join(f"{sums[n].get(g, 0):.1f}" for n in names) + " |")
    lines.append("| **total** | " + " | ".join(f"**{sum(sums[n].values()):.1f}**" for n in names) + " |")
    return lines


def top(ops: dict[str, float], k: int) -> list[str]:
    ranked = sorted(ops.items(), key=lambda kv: -kv[1])[:k]
    return [f"  {ms:8.2f} ms  {op} ({GROUP_OF.get(op, 'other')})" for op, ms in ranked]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("forward", "step"))
    parser.add_argument("task", choices=("gpt-clm", "bert-mlm", "t5-span"))
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks that it runs")
    return report(parser.parse_args(argv), parser)


def report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.kind == "forward" and args.task == "t5-span":
        parser.error("the inference forward is benchmarked for gpt-clm and bert-mlm")
    shape = TINY if args.tiny else SMALL
    fns = callables(args.kind, args.task, shape)
    per_variant = {name: measure(fn, args.calls, grad=args.kind == "step") for name, fn in fns.items()}
    lines = [f"### {args.kind} of {args.task} ({shape.name}): self CPU time per call, {args.calls} calls, "
             f"{torch.get_num_threads()} thread(s)", "", *table(per_variant)]
    for name, ops in per_variant.items():
        lines += ["", f"{name}: top operators", *top(ops, args.top)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
