"""Helpers of the distributed tests (imported by their conftest and test modules)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
GPT_TINY = str(ROOT / "specs" / "gpt-tiny.toml")
WORKER = str(Path(__file__).resolve().parent / "worker.py")

# gpt-tiny.toml at test size: a 1-layer, width-32 GPT on the first 30 documents of the
# embedded corpus; 20 steps of a global batch of 8 sequences; checkpoints every 5 steps,
# all kept; validation after steps 10 and 20 on all 38 validation sequences, in 5 batches
# (8, 8, 8, 8 and 6 sequences: two processes get unequal shares). Dropout off and no attention bias, so that one process
# and two compute the same function: the key part of an attention bias has an analytically
# zero gradient (softmax ignores a shift), whose rounding noise Adam scales up to whole
# learning-rate steps, so no two summation orders agree on it; not even batch 8 against
# 4 x 2 accumulated on one process.
TINY = [
    "params.layers=1", "params.d_model=32", "params.heads=2", "params.vocab=512", "params.dropout=0",
    "blocks.decoder_layer.nodes.attn.bias=false", "data.max_documents=30",
    "train.steps=20", "train.batch_size=8", "train.seq_len=32", "train.warmup=5", "train.log_every=1",
    "train.eval_every=10", "train.eval_batches=5", "train.save_every=5", "train.keep=4", "train.sample_tokens=0",
]
STEPS = 20

Run = Callable[..., subprocess.CompletedProcess]


def sets(*overrides: str) -> list[str]:
    """`--set` arguments for TINY with `overrides` (KEY=VALUE) replacing or adding keys."""
    merged = {s.split("=", 1)[0]: s for s in TINY}
    merged.update({s.split("=", 1)[0]: s for s in overrides})
    return [arg for s in merged.values() for arg in ("--set", s)]


def torchrun_args(nproc: int = 2, max_restarts: int = 0) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "--max-restarts", str(max_restarts), "--monitor-interval", "0.1"]


def metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run: Path) -> dict[int, float]:
    return {line["step"]: line["loss"] for line in metrics(run) if "loss" in line}


def val_losses(run: Path) -> dict[int, float]:
    return {line["step"]: line["val_loss"] for line in metrics(run) if "val_loss" in line}


def weights(run: Path, step: int = STEPS) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoints" / f"step-{step:08d}" / "model.safetensors")


def max_weight_diff(a: Path, b: Path, step: int = STEPS) -> float:
    wa, wb = weights(a, step), weights(b, step)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def assert_losses_close(run: Path, reference: Path, steps: range, rtol: float = 1e-5) -> None:
    got, want = losses(run), losses(reference)
    assert sorted(got) == list(range(1, STEPS + 1)), sorted(got)
    worst = max(abs(got[s] - want[s]) / abs(want[s]) for s in steps)
    assert worst <= rtol, f"largest relative loss difference {worst:.2e} over steps {steps}"


def keep_until(run: Path, step: int) -> None:
    """Remove the checkpoints after `step`, as if the run had stopped there."""
    import shutil

    for ckpt in (run / "checkpoints").iterdir():
        if int(ckpt.name.split("-")[1]) > step:
            shutil.rmtree(ckpt)
