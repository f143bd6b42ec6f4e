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

`--every N` also scores the held-out pairs every N steps (the curve, with the
training loss of those N steps), `--bleu` decodes them at the end with the
spec's beam and greedily and reports BLEU and chrF, and `--set KEY=VALUE`
overrides the spec for every variant (after the batch size of 32, so
`--set tasks.translate.train.batch_size=16` wins). `--init RUN/checkpoints/step-N`
starts from a pretrained checkpoint's weights (`--init-only PATTERN`: only
those whose names match), `--bias-lr N` multiplies the relative position bias
tables' learning rate, and `--save FILE` keeps the trained weights.

Figures measured with it are in docs/finetuning.md ("Why t5-tiny translated badly").
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph.names import matches
from specc.runtime.train.finetune import _runner, task_setup
from specc.runtime.objectives import LossSums
from specc.runtime.train.optim import lr_at, param_groups
from specc.runtime.train.session import tokenizer_for
from specc.runtime.data.labelled import Record
from specc.runtime.tasks import load_splits
from specc.runtime.tasks.base import Feature, TaskRunner, epoch_index
from specc.runtime.tasks.metrics import sacrebleu_score
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


def measure(name: str, steps: int, extra: Sequence[str] = (), every: int = 0, bleu: bool = False,
            say: Callable[[str], None] = print, save: Path | None = None, bias_lr: float = 1.0,
            init: Path | None = None, init_only: str = "*") -> dict[str, object]:
    v = VARIANTS[name]
    sets = ['tasks.translate.from=""', f"tasks.translate.train.steps={steps}", "tasks.translate.train.batch_size=32",
            *v.sets, *extra]
    setup = task_setup(validate(parse(SPECS / v.spec, sets)), SPECS, None)
    plan = setup.plan()
    tok = tokenizer_for(plan, plan.corpus())
    splits = load_splits(setup.task, SPECS)
    runner = _runner(setup, tok, splits.train)
    train, val_records = runner.encode(splits.train, gold=True), splits.validation[:200]
    val = runner.encode(val_records, gold=True)
    cfg = setup.task.params.train
    model = compile_model(setup.graph)
    if init is not None:  # a pretrained checkpoint's weights, those whose names match `init_only` (the rest stay random)
        from safetensors.torch import load_file

        weights = {k: v for k, v in load_file(str(init / "model.safetensors")).items() if matches(k, [init_only])}
        model.load_state_dict(weights, strict=False)
    # a learning-rate multiplier for T5's relative position bias tables (`bias_lr`)
    scales = {n: bias_lr for n, _ in model.named_parameters() if n.endswith("_bias.weight")} if bias_lr != 1.0 else None
    groups = param_groups(model, cfg, scales)
    if v.adafactor:
        opt: torch.optim.Optimizer = torch.optim.Adafactor([p for g in groups for p in g["params"]], lr=1e-2)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    base = [g["lr"] * g.get("lr_scale", 1.0) for g in opt.param_groups]
    order: dict[int, np.ndarray] = {}  # the trainer's order: a fresh seeded permutation each epoch
    words = sum(len(r.get(setup.task.params.data.target, str).split()) for r in val_records)
    start = time.perf_counter()
    model.train()
    train_sum, train_words = 0.0, 0
    for step in range(steps):
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * lr_at(step, cfg) / cfg.lr
        first = step * cfg.batch_size
        picked = [epoch_index(k, len(train), cfg.seed, order) for k in range(first, first + cfg.batch_size)]
        batch = runner.collate([train[i] for i in picked])
        sums = LossSums()
        runner.loss(model(**batch.inputs), batch, sums).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_sum += sums.sums["lm"]
        train_words += sum(len(splits.train[i].get(setup.task.params.data.target, str).split()) for i in picked)
        if every and (step + 1) % every == 0 and step + 1 < steps:
            held_out = _held_out(model, runner, val)
            say(json.dumps({"variant": name, "step": step + 1, "train_nats_per_word": round(train_sum / train_words, 4),
                            "nats_per_word": round(held_out.sums["lm"] / words, 4)}))
            train_sum, train_words = 0.0, 0
            model.train()
    seconds = time.perf_counter() - start
    if save is not None:  # the trained weights, to read its errors (compile the same spec and load them)
        torch.save(model.state_dict(), save)
    sums = _held_out(model, runner, val)
    per_token = sums.means()["lm"]
    out: dict[str, object] = {
        "variant": name, "steps": steps, "nats_per_word": round(sums.sums["lm"] / words, 4),
        "nats_per_token": round(per_token, 4), "ppl_per_token": round(math.exp(per_token), 4),
        "tokens_per_word": round(sums.counts["lm"] / words, 2), "train_seconds": round(seconds, 1)}
    if bleu:
        out.update(_decoded(model, runner, val_records, val))
    return out


def _held_out(model: torch.nn.Module, runner: TaskRunner, val: Sequence[Feature]) -> LossSums:
    """The teacher-forced loss over the held-out features, in evaluation mode."""
    model.eval()
    sums = LossSums()
    with torch.no_grad():
        for first in range(0, len(val), 50):
            batch = runner.collate(val[first : first + 50])
            runner.loss(model(**batch.inputs), batch, sums)
    return sums


def _decoded(model: torch.nn.Module, runner: TaskRunner, records: Sequence[Record], val: Sequence[Feature]) -> dict[str, object]:
    """BLEU and chrF of the held-out pairs decoded with the spec's beam and greedily (beam 1), and the first
    pairs the beam got wrong, to read."""
    gold = [runner.gold(r) for r in records]
    out: dict[str, object] = {}
    for label, width in (("beam", runner.params.beam), ("greedy", 1)):
        beam_runner = copy.copy(runner)
        beam_runner.params = runner.params.model_copy(update={"beam": width})
        pred = [runner.value(p) for p in beam_runner.predict(model, records, val, torch.device("cpu"))]
        out[f"bleu_{label}"] = round(sacrebleu_score("bleu", pred, gold)[0], 2)
        out[f"chrf_{label}"] = round(sacrebleu_score("chrf", pred, gold)[0], 2)
        out[f"exact_{label}"] = round(sum(p == g for p, g in zip(pred, gold)) / len(gold), 3)
        if label == "beam":
            out["wrong"] = [{"src": r.get(runner.params.data.source, str), "pred": p, "gold": g}
                            for r, p, g in zip(records, pred, gold) if p != g][:3]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every", type=int, default=0, help="also score the held-out pairs every N steps")
    parser.add_argument("--bleu", action="store_true", help="decode the held-out pairs at the end (beam and greedy)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override the spec of every variant")
    parser.add_argument("--bias-lr", type=float, default=1.0,
                        help="learning-rate multiplier of the relative position bias tables")
    parser.add_argument("--init", type=Path, help="start from this checkpoint folder's weights (its tokenizer must be the spec's)")
    parser.add_argument("--init-only", default="*", help="with --init: load only the weights whose names match this pattern")
    parser.add_argument("--save", type=Path, help="write the last variant's trained weights (a state dict) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.variants:
        result = measure(name, args.steps, args.sets, args.every, args.bleu, lambda line: print(line, flush=True),
                         args.save, args.bias_lr, args.init, args.init_only)
        print(json.dumps({**result, "sets": args.sets, "bias_lr": args.bias_lr,
                          "init": str(args.init or ""), "init_only": args.init_only}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
