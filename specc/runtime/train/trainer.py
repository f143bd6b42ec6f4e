"""One generic training loop for every objective and task.

AdamW with declared decay exclusions, warmup + decay, gradient accumulation
and clipping, autocast on GPU, optional torch.compile, periodic evaluation,
early stopping, atomic checkpoints, exact resumption (the data position is the
step, the RNG state is saved), graceful Ctrl-C, and the feedback a person
expects: a progress bar, JSONL metrics, a loss-curve picture, a final summary.
The same loop runs on one process or, under torchrun, on many (`specc.runtime.distributed`,
`specc.runtime.train.parallel`): each process trains on its share of every global batch, and only
rank 0 shows progress and writes logs and checkpoints.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from specc.canonical import architecture_hash, runtime_hash
from specc.compiler import compile_model
from specc.runtime.runs import checkpoint
from specc.runtime import distributed, trackers
from specc.runtime.train import guard
from specc.runtime.runs.checkpoint import TrainState
from specc.runtime.runs.runlog import MetricsLog
from specc.runtime.errors import UserError
from specc.runtime.device import autocast, pick_device
from specc.runtime.batch import LossSums, is_loss
from specc.runtime.train.optim import freeze, lr_at, make_optimizer
from specc.runtime.train.parallel import Engine
from specc.runtime.train.session import Plan
from specc.runtime.data.tokenizer import TextTokenizer
from specc.runtime.runs.transfer import load_run_weights
from specc.runtime.data.tokens import TokenStore
from specc.runtime.train.workload import Pretraining, Workload


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    tokens: int
    seconds: float
    val: dict[str, float] = field(default_factory=dict)
    tokens_per_s: float = 0.0
    data_fraction: float = 0.0  # share of step time spent building batches (outside the model)
    stopped_early: bool = False
    eval_seconds: float = 0.0  # outside `seconds`: evaluations and checkpoints
    save_seconds: float = 0.0
    resumed_from: int | None = None  # the step a resumed run continued from (`steps` counts the whole run)
    val_step: int | None = None  # the step `val` was measured at (None: no evaluation in this session)

    def resumed_note(self) -> str:
        """", resumed at step N: this session M steps" for a resumed run (its tokens and time are this session's)."""
        if self.resumed_from is None:
            return ""
        return f", resumed at step {self.resumed_from}: this session {self.steps - self.resumed_from} steps"


@dataclass
class Trainer:
    plan: Plan
    run_dir: Path
    tok: TextTokenizer
    train_store: TokenStore | None = None  # pretraining data, when no `workload` is given
    val_store: TokenStore | None = None
    resume: bool = False
    quiet: bool = False
    on_step: Callable[[int], None] | None = None  # test hook: called after each optimizer step
    workload: Workload | None = None  # what to train on; default: the plan's objectives over the stores
    _only: list[str] | None = field(default=None, init=False)  # the parameters a checkpoint stores (None: all)
    # After `run` on one process: the trained model, holding its latest checkpoint's weights (what fine-tuning
    # scores without compiling the graph again); None under torchrun, where the model is wrapped or sharded.
    live: torch.nn.Module | None = field(default=None, init=False)

    def run(self) -> TrainResult:
        cfg = self.plan.config.train
        trackers.require(cfg.loggers)  # a named tracker that is not installed stops the run before anything is written
        me = distributed.ranks()
        split = distributed.split_batch(cfg.batch_size, cfg.grad_accum, me)
        device = distributed.device_for(pick_device(cfg.device))
        torch.manual_seed(cfg.seed)
        work = self.workload or self._pretraining()
        model = compile_model(self.plan.graph, device)
        if not self.resume:
            work.start(model)
        state, ckpt = self._start(model, work)
        scales = work.lr_scales(model)
        freeze(model, scales)  # before the engine: data parallelism reduces the gradients of trainable parameters only
        # An adapted run's checkpoints hold what it trains; the frozen rest is its base checkpoint's.
        self._only = [n for n, p in model.named_parameters() if p.requires_grad] if self.plan.graph.adapters else None
        engine = Engine(model, work, cfg, device,  # after the weights are in: FSDP shards what it finds
                        sample=lambda: work.batch(split.first(state.samples, 0), split.micro).to(device))
        optimizer = make_optimizer(model, cfg, scales)
        if ckpt is not None:
            engine.load(ckpt, optimizer, cfg.seed, state.step)
        else:
            engine.seed(cfg.seed, state.step)
        log = MetricsLog(self.run_dir / "metrics.jsonl", state.step, distributed.note, cfg.loggers) if me.main else _NoLog()
        model.train()
        bar = tqdm(total=cfg.steps, initial=state.step, disable=self.quiet or not me.main, dynamic_ncols=True, desc="train")
        timer = _Timer()
        result = TrainResult(self.run_dir, state.step, 0, 0.0, resumed_from=state.step if ckpt is not None else None)
        with _CtrlC() as ctrl_c:
            while state.step < cfg.steps:
                sums, event = self._step(engine, optimizer, work, state, split, device, timer)
                state.step += 1
                result.tokens += timer.last_tokens
                self._report(state, sums, optimizer, timer, log, bar)
                if event is not None:  # a skipped update or a loss spike (specc.runtime.train.guard)
                    log.write(event)
                best = False
                if state.step % cfg.eval_every == 0 or state.step == cfg.steps:
                    t0 = time.perf_counter()
                    result.val, result.val_step = self._eval(model, work, device, state, log), state.step
                    result.eval_seconds += time.perf_counter() - t0
                    best = bool(cfg.keep_best) and state.stale_evals == 0
                    if best:
                        state.best_step = state.step
                    if cfg.early_stopping and state.stale_evals >= cfg.early_stopping:
                        result.stopped_early = True
                saved = state.step % cfg.save_every == 0 or state.step == cfg.steps or result.stopped_early or best
                if saved:
                    t0 = time.perf_counter()
                    self._save(state, engine, optimizer, work)
                    result.save_seconds += time.perf_counter() - t0
                if self.on_step is not None:
                    self.on_step(state.step)
                if distributed.any_rank(ctrl_c.requested):  # only between steps is the state a consistent checkpoint
                    bar.close()
                    if not saved:
                        self._save(state, engine, optimizer, work)
                    distributed.note(f"interrupted after step {state.step}; continue with --resume {self.run_dir}")
                    raise KeyboardInterrupt
                if result.stopped_early:
                    break
        bar.close()
        result.steps, result.seconds = state.step, timer.total
        result.tokens_per_s = result.tokens / max(timer.total, 1e-9)
        result.data_fraction = timer.data / max(timer.total, 1e-9)
        log.close()
        self.live = model if me.world == 1 else None
        return result

    # -- pieces of the loop -------------------------------------------------------
    def _pretraining(self) -> Pretraining:
        assert self.train_store is not None and self.val_store is not None, "Trainer needs a workload or token stores"
        return Pretraining(self.plan.objectives, self.tok, self.train_store, self.val_store, self.plan.config.train)

    def _start(self, model: torch.nn.Module, work: Workload) -> tuple[TrainState, Path | None]:
        """The state to start from, and the checkpoint it comes from (its weights loaded into `model`)."""
        arch, rt = architecture_hash(self.plan.spec), runtime_hash(self.plan.spec)
        if not self.resume:
            state = TrainState(arch_hash=arch, runtime_hash=rt, base=str(self.plan.base))
            if self.plan.graph.adapters is not None:
                base = work.weights_base()
                if base is None:
                    raise UserError("[adapters] train on top of pretrained weights, which this run does not start from: "
                                    "fine-tune from a pretrained run (specc finetune SPEC --from RUN)")
                state.base_ckpt, state.base_hash = str(base.resolve()), checkpoint.load_state(base).arch_hash
            return state, None
        ckpt = checkpoint.latest(self.run_dir)
        if ckpt is None:
            raise UserError(f"--resume: no complete checkpoint in {self.run_dir}")
        state = checkpoint.load_state(ckpt)
        if state.arch_hash != arch:  # refused with the semantic diff, unless only the hash's definition changed
            from specc.runtime.runs.lineage import check_resume

            check_resume(ckpt, self.plan.graph, state.arch_hash)
        load_run_weights(ckpt, model, self.plan.graph)
        if distributed.ranks().main:
            checkpoint.discard_leftovers(self.run_dir)
        distributed.note(f"resuming from step {state.step} ({ckpt})")
        return state, ckpt

    def _step(self, engine: Engine, optimizer: torch.optim.Optimizer, work: Workload, state: TrainState,
              split: distributed.BatchSplit, device: torch.device, timer: "_Timer") -> tuple[LossSums, dict[str, Any] | None]:
        """One optimizer step over the global batch at the data position; this process runs its share.
        The update is applied unless `guard.judge` drops it (or stops the run) for a numerical fault."""
        cfg = self.plan.config.train
        for group in optimizer.param_groups:
            group["lr"] = lr_at(state.step, cfg) * group.get("lr_scale", 1.0)
        sums = LossSums()
        timer.start()
        tokens = 0
        for micro in range(split.accum):
            t0 = time.perf_counter()
            batch = work.batch(split.first(state.samples, micro), split.micro).to(device)
            timer.data += time.perf_counter() - t0
            tokens += batch.tokens
            with engine.micro_batch(last=micro == split.accum - 1):
                with autocast(device, cfg.precision):
                    loss = engine(batch, sums)
                (loss / split.accum).backward()
        state.samples += split.global_batch
        norm = engine.clip(cfg.clip if cfg.clip > 0 else float("inf"))
        sums = distributed.sum_over_ranks(sums)  # every process judges the same totals
        verdict = guard.judge(cfg, state, sum(v for k, v in sums.means().items() if is_loss(k)), norm, self.run_dir)
        sums.add("grad_norm", norm, 1)
        if verdict.apply:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timer.stop(distributed.sum_ints(tokens))
        return sums, verdict.event

    def _report(self, state: TrainState, sums: LossSums, optimizer: torch.optim.Optimizer, timer: "_Timer",
                log: "MetricsLog | _NoLog", bar: tqdm) -> None:
        means = sums.means()
        loss = sum(v for k, v in means.items() if is_loss(k))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{timer.rate:,.0f}", refresh=False)
        if state.step % self.plan.config.train.log_every == 0 or state.step == 1:
            log.write({"step": state.step, "loss": loss, **{f"loss_{k}" if is_loss(k) else k: v for k, v in means.items()
                                                           if k != "grad_norm"},
                       "lr": lr_at(state.step - 1, self.plan.config.train), "grad_norm": means.get("grad_norm", 0.0),
                       "tokens_per_s": timer.rate, "elapsed": timer.total,
                       **({"skipped_steps": state.skipped} if state.skipped else {})})

    def _eval(self, model: torch.nn.Module, work: Workload, device: torch.device, state: TrainState,
              log: "MetricsLog | _NoLog") -> dict[str, float]:
        out = distributed.from_rank0(work.evaluate(model, device, self.plan.config.train))  # decisions stay in step
        val = out[work.monitor]
        if state.best_val is None or (val > state.best_val if work.higher_is_better else val < state.best_val):
            state.best_val, state.stale_evals = val, 0
        else:
            state.stale_evals += 1
        log.write({"step": state.step, **out})
        return out

    def _save(self, state: TrainState, engine: Engine, optimizer: torch.optim.Optimizer, work: Workload) -> None:
        from specc.runtime.runs import lineage

        extras = {**work.files(), **lineage.files(self.plan.graph, self.run_dir)} if engine.me.main else {}
        engine.save(self.run_dir, state, optimizer, self.plan.spec_json(), self.tok.tok.to_str(), self.plan.config.train.keep,
                    extras, replica=lambda: compile_model(self.plan.graph, "cpu", init=False), only=self._only)


class _CtrlC:
    """Graceful Ctrl-C: the step in progress finishes, then the loop saves and stops; a second Ctrl-C
    stops at once, without saving. (Saving where the Ctrl-C lands could capture a half-done step,
    its data position and RNG advanced but not its weights, which no resume continues exactly.)"""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():  # the only thread signals reach
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


class _Timer:
    def __init__(self) -> None:
        self.total = self.data = 0.0
        self.rate = 0.0
        self.last_tokens = 0
        self._t = 0.0

    def start(self) -> None:
        self._t = time.perf_counter()

    def stop(self, tokens: int) -> None:
        dt = time.perf_counter() - self._t
        self.total += dt
        self.last_tokens = tokens
        self.rate = 0.9 * self.rate + 0.1 * tokens / dt if self.rate else tokens / dt


class _NoLog:
    """The metrics log of processes other than rank 0."""

    def write(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


