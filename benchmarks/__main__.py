"""`python -m benchmarks [--quick | --tiny | --full] [--device cpu|cuda] [--threads N] [--out DIR]`

Runs the suites of the chosen mode, prints the markdown tables and writes
`results.json` and `results.md` into `--out` (default `benchmarks/results`).

- `--tiny`: every suite at a toy size, one round: checks that the benchmark
  works (the test suite runs it), measures nothing;
- `--quick` (default): the issue's small shape (hidden 256, 4 layers, vocab
  8192, batch 8 x 128), published sizes for build time; a few minutes on a
  laptop CPU;
- `--full`: adds the published base sizes to the training and inference
  suites, BERT MLM + NSP, more rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import build, infer, levers, report, train
from benchmarks.models import BASE, SMALL, TINY

HERE = Path(__file__).resolve().parent


def _plan(mode: str) -> dict[str, Any]:
    if mode == "tiny":
        return {"shape": TINY, "reps": 1, "warmup": 1, "train": ["gpt-clm", "bert-mlm", "t5-span"], "forward": ["gpt-clm", "bert-mlm"],
                "generate": (8, 4), "build": [("gpt", TINY)], "front_reps": 2, "front_cold": False, "adamw": [100_000], "alloc_pairs": 0,
                "dropout": False, "scaling": {"layers": (1, 2)}, "base": False}
    plan: dict[str, Any] = {"shape": SMALL, "reps": 5, "warmup": 0, "train": ["gpt-clm", "bert-mlm", "t5-span"], "forward": ["gpt-clm", "bert-mlm"],
            "generate": (32, 32), "build": [("gpt", None), ("bert", None)], "front_reps": 10, "front_cold": True,
            "adamw": [5_000_000], "alloc_pairs": 1, "dropout": True,
            "scaling": {"layers": (2, 4, 8), "d_model": (128, 512), "seq": (64, 256)}, "base": False}
    if mode == "full":
        plan |= {"reps": 9, "warmup": 1, "train": plan["train"] + ["bert-mlm-nsp"], "generate": (32, 64), "alloc_pairs": 3,
                 "adamw": [5_000_000, 110_000_000], "scaling": {"layers": (2, 4, 8, 16), "d_model": (128, 256, 512),
                                                                 "seq": (64, 128, 256, 512)}, "base": True}
    return plan


def run(mode: str, device: str, out: Path, say: Any = print, reps: int | None = None,
        alloc_pairs: int | None = None) -> dict[str, Any]:
    """Run the suites of `mode` on `device` (`reps` rounds and `alloc_pairs` process rounds instead of the
    mode's); write `results.json` and `results.md` into `out`; return the results."""
    plan = _plan(mode)
    plan["reps"] = reps or plan["reps"]
    plan["alloc_pairs"] = plan["alloc_pairs"] if alloc_pairs is None else alloc_pairs
    if mode != "tiny":
        return _run(mode, plan, device, out, say)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # toy sizes: one thread is fastest, and safe on a busy machine
    try:
        return _run(mode, plan, device, out, say)
    finally:
        torch.set_num_threads(threads)


def _run(mode: str, plan: dict[str, Any], device: str, out: Path, say: Any) -> dict[str, Any]:
    tiny, shape, reps, warmup = mode == "tiny", plan["shape"], plan["reps"], plan["warmup"]
    start = time.perf_counter()
    results: dict[str, Any] = {"train": [], "forward": [], "generate": [], "build": [], "levers": {}}

    def step(what: str) -> None:
        say(f"[{time.perf_counter() - start:6.1f} s] {what}")

    for task in plan["train"]:
        shapes = [shape] + ([BASE[train.TASKS[task][0]]] if plan["base"] else [])
        for s in shapes:
            step(f"training step: {task} ({s.name})")
            results["train"].append(train.run(task, s, reps, warmup, levers=s is shape and task != "t5-span", device=device))
    for task in plan["forward"]:
        for s in [shape] + ([BASE[train.TASKS[task][0]]] if plan["base"] else []):
            step(f"inference forward: {task} ({s.name})")
            results["forward"].append(infer.run_forward(task, s, reps, warmup, device))
    step("generation")
    prompt, new = plan["generate"]
    results["generate"].append(infer.run_generate(shape, prompt, new, reps, warmup, device))
    for family, s in plan["build"]:
        step(f"build time: {family}")
        results["build"].append(build.run_build(family, max(3, reps // 2) if not tiny else 1, s))
    step("parse + validate + graph of a 24-layer spec")
    results["front"] = build.run_front(plan["front_reps"], cold=plan["front_cold"])
    step("levers: fused AdamW, GELU, activation checkpointing")
    results["levers"]["adamw"] = [levers.adamw(n, max(3, reps // 2)) for n in plan["adamw"]]
    results["levers"]["gelu"] = levers.gelu(shape, reps)
    results["levers"]["checkpointing"] = levers.checkpointing(shape, max(3, reps - 2))
    if device == "cpu" and plan["alloc_pairs"]:
        step("lever: allocator (child processes)")
        results["levers"]["allocator"] = levers.allocator(plan["alloc_pairs"], max(3, reps - 2))
    if plan["dropout"]:
        step("lever: dropout")
        results["levers"]["dropout"] = levers.dropout(shape, max(3, reps - 2))
    step("scaling")
    results["scaling"] = build.run_scaling(shape, plan["scaling"], max(2, reps // 2) if not tiny else 1, device)
    import transformers

    results["meta"] = {
        "mode": mode, "device": _device_name(device), "torch": torch.__version__, "transformers": transformers.__version__,
        "threads": torch.get_num_threads(), "reps": reps, "seconds": time.perf_counter() - start,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(report.markdown(results) + "\n")
    return results


def _device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick", help="laptop-sized run (default)")
    size.add_argument("--tiny", dest="mode", action="store_const", const="tiny", help="toy sizes: checks the benchmark runs")
    size.add_argument("--full", dest="mode", action="store_const", const="full", help="adds the published base sizes")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reps", type=int, default=None, help="interleaved rounds per comparison (default: the mode's)")
    parser.add_argument("--alloc-pairs", type=int, default=None,
                        help="rounds of fresh processes in the allocator lever and the as-launched table (default: the mode's)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the allocator lever's child processes
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 1
    results = run(args.mode or "quick", args.device, args.out, say=lambda line: print(line, file=sys.stderr), reps=args.reps,
                  alloc_pairs=args.alloc_pairs)
    print(report.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
