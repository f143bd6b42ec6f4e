"""What the end-to-end fine-tuning tests share: tiny settings, a runner, the run's losses, the CLI in-process."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

from helpers import ROOT, SPECS
from specc.cli import main
from specc.runtime.train.finetune import FinetuneOutcome, finetune

TOKENIZER = ["tokenizer.vocab_size=1024", "data.max_documents=80"]  # a quick tokenizer, trained once per session
MODEL = ["params.layers=1", "params.d_model=64", "params.heads=2", *TOKENIZER]
WIDER = ["params.d_model=128", "params.heads=4"]  # what QA and translation need to beat their baselines in a few hundred steps


def tiny(task: str, steps: int, *extra: str, lr: float = 1e-3) -> list[str]:
    return [*MODEL, f'tasks.{task}.from=""', f"tasks.{task}.train.steps={steps}", f"tasks.{task}.train.warmup=10",
            f"tasks.{task}.train.eval_every={steps}", f"tasks.{task}.train.save_every={steps}",
            f"tasks.{task}.train.log_every=10", f"tasks.{task}.train.lr={lr}", *extra]


def run(spec: str, task: str, out: Path, sets: list[str]) -> FinetuneOutcome:
    return finetune(str(SPECS / spec), None, str(out), task, sets, quiet=True, say=lambda s: None)


def train_losses(out: Path) -> list[float]:
    """The training loss at step 1 and at every logging step after it."""
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if "loss" in x]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()
