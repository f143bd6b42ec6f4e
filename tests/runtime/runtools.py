"""Helpers of the runtime tests (imported by their conftest and test modules)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
GPT_TINY = str(SPECS / "gpt-tiny.toml")
KILLABLE = str(Path(__file__).resolve().parent / "killable_train.py")

# gpt-tiny.toml at test size: a 1-layer, width-32 GPT on the first 12 documents of
# the embedded corpus, ~31 steps of 2 x 4 sequences per epoch, so a 40-step run
# crosses an epoch boundary; dropout 0.1 makes the RNG state part of what a resume
# must restore, and 2 micro-batches per step let a signal land inside a step.
TINY = [
    "params.layers=1", "params.d_model=32", "params.heads=2", "params.vocab=512", "params.dropout=0.1",
    "data.max_documents=12",
    "train.steps=40", "train.batch_size=4", "train.grad_accum=2", "train.seq_len=32", "train.warmup=5", "train.log_every=1",
    "train.eval_every=10", "train.eval_batches=2", "train.save_every=6", "train.sample_tokens=0",
]

Run = Callable[..., subprocess.CompletedProcess]


def sets(*overrides: str, base: list[str] = TINY) -> list[str]:
    """`--set` arguments for `base` with `overrides` (KEY=VALUE) replacing or adding keys."""
    merged = {s.split("=", 1)[0]: s for s in base}
    merged.update({s.split("=", 1)[0]: s for s in overrides})
    return [arg for s in merged.values() for arg in ("--set", s)]


def metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_clean_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 1, each fragment in stderr, and no Python traceback anywhere."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)
