"""The jobs behind `specc train`, `specc eval` and `specc generate`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from specc.compiler import SpecModel, compile_model
from specc.runtime.runs import checkpoint
from specc.runtime import distributed
from specc.runtime.data.prepare import prepare, token_store
from specc.runtime.errors import UserError
from specc.runtime.inference.generate import Sampling, generate_causal, generate_seq2seq
from specc.runtime.device import perplexity, pick_device
from specc.runtime.train.loop import BatchSource, evaluate, unigram_loss, val_batches
from specc.runtime.batch import is_loss
from specc.runtime.train.plot import write_loss_curve
from specc.runtime.train.overrides import check_pretrain_sets
from specc.runtime.train.session import Plan, load_run, plan_from_spec, tokenizer_for
from specc.runtime.data.tokenizer import TextTokenizer
from specc.runtime.train.trainer import Trainer, TrainResult
from specc.runtime.runs.transfer import load_run_weights


@dataclass
class TrainOutcome:
    result: TrainResult
    unigram_ppl: float | None
    sample: str | None
    picture: str
    phases: dict[str, float] = field(default_factory=dict)  # seconds of each part of the job


def train(spec_path: str, out: str | None, resume: str | None, sets: Sequence[str] = (), search_paths: Sequence[str] = (),
          quiet: bool = False, on_step: Callable[[int], None] | None = None, say: Callable[[str], None] = print) -> TrainOutcome:
    """Train the spec's model on its declared data with its declared objectives (on this process's share
    of the data, under torchrun; rank 0 reports)."""
    say = distributed.say_on_main(say)
    clock = _Phases()
    distributed.wait_for_leader()  # one process per machine reads the spec and fills the caches first
    plan = plan_from_spec(spec_path, sets, search_paths)
    check_pretrain_sets(sets)
    if not plan.objectives.entries:  # a spec of fine-tuning tasks only
        raise UserError(f"{spec_path} declares no [objective] to pretrain with; fine-tune its tasks with `specc finetune`")
    run_dir = Path(resume or out or Path("runs") / (plan.spec.name or Path(spec_path).stem))
    resume = resume or distributed.resume_after_restart(run_dir, say)
    if not resume and checkpoint.latest(run_dir) is not None:
        raise UserError(f"{run_dir} already holds a run; pass --resume {run_dir} to continue it, or --out elsewhere")
    if resume and checkpoint.latest(run_dir) is None:  # before the corpus is read and a tokenizer trained
        what = "holds no complete checkpoint" if run_dir.exists() else "does not exist"
        raise UserError(f"--resume: {run_dir} {what}; nothing to continue")
    corpus = plan.corpus()
    say(f"specc train: {plan.spec.name or spec_path} → {run_dir}  (objectives: {', '.join(plan.objectives.names)})")
    for line in corpus.listing().lines() if plan.config.data.source != "default" else []:
        say(f"data: {line}")  # every file read, and every file passed over with why
    clock.lap("start")
    tok = tokenizer_for(plan, corpus)
    clock.lap("tokenizer")
    prepared = prepare(corpus, tok, quiet=quiet or not distributed.ranks().main)
    for line in prepared.report.lines() if prepared.report is not None else []:
        say("data: " + line)
    train_store, val_store = prepared.train, prepared.val
    clock.lap("data")
    params = sum(p.numel() for p in compile_model(plan.graph, "meta", init=False).parameters())
    say(f"data: {len(train_store):,} train / {len(val_store):,} val tokens in {train_store.n_docs} + {val_store.n_docs} documents; "
        f"tokenizer {plan.config.tokenizer.kind} with {tok.vocab_size} tokens; model {params:,} parameters")
    skipped = train_store.skipped  # of the whole corpus: bad records belong to no split
    if skipped.count:  # [data] on_bad_record = "skip"
        say(f"data: {skipped.count} bad record{'s' * (skipped.count > 1)} skipped (first: {'; '.join(skipped.first[:3])})")
    distributed.release_others()
    distributed.describe(plan.config.train.parallel, say)
    trainer = Trainer(plan, run_dir, tok, train_store, val_store, resume=resume is not None, quiet=quiet, on_step=on_step)
    result = trainer.run()
    clock.lap("training", result.eval_seconds + result.save_seconds)
    clock.phases["evaluation"], clock.phases["checkpoints"] = result.eval_seconds, result.save_seconds
    if not distributed.ranks().main:
        return TrainOutcome(result, None, None, "")
    uni = perplexity(unigram_loss(train_store, val_store, tok.vocab_size)) if plan.objectives.decoder_only else None
    picture = write_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss.png")
    sample = _sample(plan, run_dir, tok) if plan.objectives.decoder_only and plan.config.train.sample_tokens else None
    clock.lap("sample")
    _summary(result, uni, picture, sample, say)
    if sample is not None:
        for line in expectations(params, result, len(train_store), spec_path, run_dir):
            say(line)
    say(clock.line())
    return TrainOutcome(result, uni, sample, picture, clock.phases)


class _Phases:
    """Wall-clock seconds of each part of a job, to show where a run's time goes."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._t = self._start = time.perf_counter()

    def lap(self, name: str, less: float = 0.0) -> None:
        """The time since the previous lap is `name`'s (less `less`, counted under other names)."""
        now = time.perf_counter()
        self.phases[name] = now - self._t - less
        self._t = now

    def line(self) -> str:
        parts = " · ".join(f"{k} {v:.1f} s" for k, v in self.phases.items())
        return f"time: {parts} · total {time.perf_counter() - self._start:.1f} s (after imports)"


def _sample(plan: Plan, run_dir: Path, tok: TextTokenizer) -> str:
    model, _, _ = load_model(run_dir)
    cfg = plan.config.train
    prompt = tok.encode(cfg.sample_prompt) if cfg.sample_prompt else [tok.specials.eos]
    ids = generate_causal(model, plan.graph, prompt, Sampling(cfg.sample_tokens, temperature=0.8, top_k=40, seed=cfg.seed),
                          eos=tok.specials.eos)
    return cfg.sample_prompt + tok.decode(ids)


def done_line(r: TrainResult) -> str:
    """The run's steps in all; a resumed run's tokens and time are this session's, and it says so."""
    return (f"done: {r.steps} steps{r.resumed_note()}, {r.tokens:,} tokens in {r.seconds:.1f} s ({r.tokens_per_s:,.0f} "
            f"tokens/s; {100 * r.data_fraction:.1f}% of step time building batches)"
            + (" — stopped early" if r.stopped_early else ""))


def _summary(r: TrainResult, uni: float | None, picture: str, sample: str | None, say: Callable[[str], None]) -> None:
    say(done_line(r))
    if r.val:
        line = f"validation loss {r.val['val_loss']:.3f}"
        if "val_ppl" in r.val:
            line += f", perplexity {r.val['val_ppl']:.1f}"
        if uni is not None:
            line += f" (unigram baseline {uni:.1f})"
        say(line)
    say(picture)
    if sample is not None:
        say("sample:\n" + sample)


TOKENS_PER_PARAMETER = 20  # about what compute-optimal training sees (Hoffmann et al., 2022)


def expectations(params: int, r: TrainResult, corpus: int, spec_path: str, run_dir: Path) -> list[str]:
    """What a causal LM this small, trained this briefly, can show in its sample, and what to run next;
    nothing when the run saw a compute-optimal number of tokens."""
    session = r.steps - (r.resumed_from or 0)  # `tokens` are this session's, `steps` the whole run's
    per_step = r.tokens / session if session > 0 else 0.0
    seen = round(per_step * r.steps)
    if seen >= TOKENS_PER_PARAMETER * params or not seen:
        return []
    longer = 10 * r.steps
    minutes = longer * per_step / max(r.tokens_per_s, 1e-9) / 60
    return [f"what to expect: {_amount(params)} parameters have seen {_amount(seen)} tokens ({seen / corpus:.1f} passes "
            f"over {_amount(corpus)} training tokens), where compute-optimal training would see about "
            f"{_amount(TOKENS_PER_PARAMETER * params)}: the sample shows the corpus's frequent words, spelling and "
            "layout, not yet grammar or facts. Validation perplexity against the unigram baseline says how far past "
            "word frequencies it got.",
            "next:",
            f"  specc train {spec_path} --out {run_dir}-long --set train.steps={longer}   # 10 x longer: about {minutes:.0f} "
            "minutes at this run's speed",
            "  [data] source = \"auto\", path = \"my-corpus/\"   # your own text: .txt/.md/.jsonl/.parquet, compressed or not",
            f"  specc generate {run_dir} --prompt \"...\"   # or specc eval {run_dir}: probe what it learned"]


def _amount(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1_000_000 else f"{n:,}"


def load_model(run_dir: str | Path, device: str = "auto", step: int | None = None, last: bool = False,
               announce: bool = False) -> tuple[SpecModel, Plan, TextTokenizer]:
    """A run's model (weights from its chosen checkpoint, architecture from its stored spec); with `announce`,
    the checkpoint used is named on stderr."""
    plan, ckpt, tok = load_run(run_dir, step, last)
    if announce:
        distributed.note(checkpoint.describe(ckpt))
    model = compile_model(plan.graph, pick_device(device), init=False)
    load_run_weights(ckpt, model, plan.graph)
    model.eval()
    return model, plan, tok


def evaluate_run(run_dir: str, say: Callable[[str], None] = print, as_json: bool = False, step: int | None = None,
                 last: bool = False) -> dict[str, float]:
    """Held-out loss (and perplexity for LMs) of a run's latest checkpoint on its validation split."""
    model, plan, tok = load_model(run_dir, step=step, last=last, announce=True)
    cfg = plan.config.train
    store = token_store(plan.corpus(), "val", tok)
    src = BatchSource(plan.objectives, store, tok, cfg.seq_len, cfg.seed + 7919)
    device = next(model.parameters()).device
    means = evaluate(model, plan.objectives, val_batches(src, cfg), device, cfg.precision).means()
    out = {"val_loss": sum(v for k, v in means.items() if is_loss(k)), **{f"val_{k}": v for k, v in means.items()}}
    if "lm" in means:
        out["val_ppl"] = perplexity(means["lm"])
    say(json.dumps(out) if as_json else "  ".join(f"{k} {v:.4f}" for k, v in out.items()))
    return out


def generate(run_dir: str, prompt: str, sampling: Sampling, say: Callable[[str], None] = print) -> str:
    model, plan, tok = load_model(run_dir, announce=True)
    if plan.objectives.seq2seq:
        start = getattr(tok.specials, plan.objectives.decoder_start)
        ids = generate_seq2seq(model, tok.encode(prompt) + [tok.specials.eos], start, sampling, tok.specials.eos, tok.specials.pad)
        text = tok.decode(ids)
    elif plan.objectives.decoder_only:
        ids = generate_causal(model, plan.graph, tok.encode(prompt) or [tok.specials.eos], sampling)
        text = prompt + tok.decode(ids)
    else:
        raise UserError(f"{run_dir} was trained with {', '.join(plan.objectives.names)}; generation needs a causal LM or seq2seq objective")
    say(text)
    return text
