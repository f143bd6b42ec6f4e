"""How fast each translation recipe learns: held-out loss per target word after the same number of steps.

The encoder-decoders train step for step like `transformers`
(tests/runtime/test_seq2seq_parity.py), so a gap between recipes is in the
recipe: the tokenizer, the optimizer, the architecture family. Each variant
fine-tunes from random initialisation on the built-in English→German demo with
its spec's declared settings (batch 32 for all, so every variant sees the same
examples), then scores 200 validation pairs under teacher forcing. The loss is
reported in nats per target *word* as well as per token, because tokenizers
cut German into different numbers of pieces and only words compare.

    python -m benchmarks.translation_recipe --steps 300 t5 t5-unigram t5-adafactor bart gpt

Figures measured with it are in docs/finetuning.md ("Why t5-tiny translated badly").
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specc.compiler import compile_model
from specc.frontend import parse
from specc.runtime.train.finetune import _runner, task_setup
from specc.runtime.objectives import LossSums
from specc.runtime.train.optim import lr_at, param_groups
from specc.runtime.train.session import tokenizer_for
from specc.runtime.tasks import load_splits
from specc.runtime.tasks.base import epoch_index
from specc.schema import validate

SPECS = Path(__file__).resolve().parents[1] / "specs"


@dataclass(frozen=True)
class Variant:
    spec: str
    sets: tuple[str, ...] = ()
    adafactor: bool = False  # torch's Adafactor (relative step sizes, as T5 was trained) instead of the spec's AdamW


VARIANTS = {
    "t5": Variant("t5-tiny-translate.toml"),
    "t5-unigram": Variant("t5-tiny-translate.toml", ("tokenizer.kind=unigram",)),  # T5's own tokenizer kind
    "t5-adafactor": Variant("t5-tiny-translate.toml", adafactor=True),
    "bart": Variant("bart-tiny-translate.toml", ("tasks.translate.train.lr=3e-3",)),  # absolute positions
    "gpt": Variant("gpt-tiny-translate.toml"),  # decoder-only: source and target in one sequence
}


def measure(name: str, steps: int) -> dict[str, object]:
    v = VARIANTS[name]
    sets = ['tasks.translate.from=""', f"tasks.translate.train.steps={steps}", "tasks.translate.train.batch_size=32", *v.sets]
    setup = task_setup(validate(parse(SPECS / v.spec, sets)), SPECS, None)
    plan = setup.plan()
    tok = tokenizer_for(plan, plan.corpus())
    splits = load_splits(setup.task, SPECS)
    runner = _runner(setup, tok, splits.train)
    train, val_records = runner.encode(splits.train, gold=True), splits.validation[:200]
    val = runner.encode(val_records, gold=True)
    cfg = setup.task.params.train
    model = compile_model(setup.graph)
    groups = param_groups(model, cfg)
    if v.adafactor:
        opt: torch.optim.Optimizer = torch.optim.Adafactor([p for g in groups for p in g["params"]], lr=1e-2)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    base = [g["lr"] for g in opt.param_groups]
    order: dict[int, np.ndarray] = {}  # the trainer's order: a fresh seeded permutation each epoch
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * lr_at(step, cfg) / cfg.lr
        first = step * cfg.batch_size
        batch = runner.collate([train[epoch_index(k, len(train), cfg.seed, order)] for k in range(first, first + cfg.batch_size)])
        runner.loss(model(**batch.inputs), batch, LossSums()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    model.eval()
    sums = LossSums()
    with torch.no_grad():
        for first in range(0, len(val), 50):
            batch = runner.collate(val[first : first + 50])
            runner.loss(model(**batch.inputs), batch, sums)
    words = sum(len(r.get(setup.task.params.data.target, str).split()) for r in val_records)
    per_token = sums.means()["lm"]
    return {"variant": name, "steps": steps, "nats_per_word": round(sums.sums["lm"] / words, 4),
            "nats_per_token": round(per_token, 4), "ppl_per_token": round(math.exp(per_token), 4),
            "tokens_per_word": round(sums.counts["lm"] / words, 2), "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.variants:
        print(json.dumps(measure(name, args.steps)), flush=True)


if __name__ == "__main__":
    main()
