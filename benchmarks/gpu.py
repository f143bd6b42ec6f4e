"""GPU check, prepared to run in under five minutes on one GPU: GPT-2 small, sequence 1024, bf16 autocast.

`python -m benchmarks.gpu [--batch 16] [--reps 10] [--hf-compile] [--out DIR]`

Measures training steps (forward + loss + backward + clip + fused AdamW) of
`transformers`' GPT2LMHeadModel (sdpa) and of specc's compiled gpt2-small.toml
with the same weights: specc eager (its chunked vocabulary cross-entropy),
specc with every layer's activations recomputed in the backward (`[train]
activation_checkpointing = ["h"]`), and specc under `torch.compile` (what
`[train] compile = true` runs), in one process, interleaved. Reports tokens/s,
model FLOPs utilisation against the accelerator's bf16 peak (`--peak-tflops`,
default the H200's ~790 dense), peak memory of each variant's step, and ratios
against `transformers`. Writes `gpu.json` and `gpu.md` into `--out`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from specc.compiler import recompute_activations
from specc.runtime.config import TrainConfig
from specc.runtime.batch import LossSums
from specc.runtime.objectives.base import cross_entropy_sum
from specc.runtime.objectives.vocab_ce import vocab_cross_entropy
from specc.runtime.train.optim import make_optimizer

from benchmarks.harness import interleave, peak_bytes
from benchmarks.models import BASE, TINY, build
from benchmarks.train import Stepper, adamw


def flops_per_token(params_matmul: int, layers: int, d_model: int, seq: int) -> int:
    """6 N per token for the weight matmuls (forward + backward), plus attention scores and values (PaLM's count)."""
    return 6 * params_matmul + 12 * layers * d_model * seq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=None, help="tokens per sample (default 1024; 16 in a dry run)")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=790.0)
    parser.add_argument("--hf-compile", action="store_true", help="also time transformers under torch.compile")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile entirely")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--dry-run", action="store_true", help="a toy size on the CPU: checks the script, measures nothing")
    args = parser.parse_args(argv)
    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device", file=sys.stderr)
        return 1
    start = time.perf_counter()
    torch.backends.cuda.matmul.allow_tf32 = True
    args.seq = args.seq or (TINY.seq if args.dry_run else 1024)
    shape = (TINY if args.dry_run else BASE["gpt"]).with_(batch=args.batch, seq=args.seq)
    trio = build("gpt", shape, attns=("sdpa",), device=device)
    hf, ours = trio.hf["sdpa"].train(), trio.specc.train()
    x = torch.randint(0, shape.vocab, (args.batch, args.seq + 1), device=device)
    tokens, labels = x[:, :-1].contiguous(), x[:, 1:].contiguous()

    def bf16(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                return fn()
        return run

    steps: dict[str, Stepper] = {
        "transformers sdpa": Stepper(hf, bf16(lambda: hf(input_ids=tokens, labels=tokens, shift_labels=labels).loss), adamw(hf)),
        "specc": Stepper(ours, bf16(lambda: vocab_cross_entropy(ours(tokens=tokens), "logits", labels, LossSums(), "lm")),
                         make_optimizer(ours, TrainConfig())),
    }
    recomputing = copy.deepcopy(ours)
    recompute_activations(recomputing, ["h"])
    steps["specc, activation checkpointing"] = Stepper(
        recomputing, bf16(lambda: vocab_cross_entropy(recomputing(tokens=tokens), "logits", labels, LossSums(), "lm")),
        make_optimizer(recomputing, TrainConfig()))
    if not args.no_compile:

        compiled_model = copy.deepcopy(ours)
        compiled = torch.compile(compiled_model)
        steps["specc + torch.compile"] = Stepper(
            compiled_model, bf16(lambda: cross_entropy_sum(compiled(tokens=tokens)["logits"], labels, LossSums(), "lm")),
            make_optimizer(compiled_model, TrainConfig()))
        if args.hf_compile:
            hf2 = copy.deepcopy(hf)
            hf2_c = torch.compile(hf2)
            steps["transformers sdpa + torch.compile"] = Stepper(
                hf2, bf16(lambda: hf2_c(input_ids=tokens, labels=tokens, shift_labels=labels).loss), adamw(hf2))
    first = {name: step() for name, step in steps.items()}  # compiles here
    compile_s = time.perf_counter() - start
    timings = interleave(steps, args.reps, warmup=2, device=device)
    n_tokens = args.batch * args.seq
    matmul_params = sum(p.numel() for n, p in ours.named_parameters() if p.dim() == 2 and n != "wpe.weight")
    flops = flops_per_token(matmul_params, shape.layers, shape.d_model, args.seq) * n_tokens
    hf_t = timings["transformers sdpa"].median
    peaks = {name: peak_bytes(step, device) for name, step in steps.items()}
    rows = {name: {"time": t.as_dict(), "tokens_per_s": n_tokens / t.median,
                   "mfu": flops / t.median / (args.peak_tflops * 1e12), "vs_transformers": hf_t / t.median,
                   "first_loss": first[name], "peak_gib": peaks[name] / 2**30} for name, t in timings.items()}
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)", "torch": torch.__version__,
              "batch": args.batch, "seq": args.seq,
              "peak_tflops": args.peak_tflops, "flops_per_step": flops, "variants": rows,
              "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None, "seconds": time.perf_counter() - start,
              "setup_and_compile_s": compile_s}
    lines = [f"GPT-2 small, {args.batch} x {args.seq} tokens, bf16 autocast, {result['device']}", "",
             "| variant | ms/step | tokens/s | MFU | × transformers | peak GiB | first loss |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['time']['median'] * 1e3:.1f} | {r['tokens_per_s']:,.0f} | {100 * r['mfu']:.1f} % | "
                     f"{r['vs_transformers']:.2f} | {r['peak_gib']:.2f} | {r['first_loss']:.4f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1))
    (args.out / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
