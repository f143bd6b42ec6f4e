"""LoRA against full fine-tuning: `python -m benchmarks.lora [--tiny] [--reps N] [--batch B] [--seq T] [--from RUN]`.

For gpt2-small (causal LM loss) and bert-base (a 2-way classification head on the pooler) at their published
sizes, one training step of each variant on the same batch: full fine-tuning (every parameter, fused AdamW)
and LoRA (rank 8, alpha 16, on every attention and feed-forward projection; the rest frozen, a new head
trained in full), built through the runtime's own path (`[adapters.lora]`, `specc.runtime.train.optim`). Reported:
median step time (min-max) over `--reps` steps after one warm-up step, peak training memory, trainable
parameters and optimizer-state bytes.

Peak training memory is counted tensor by tensor: the weights and the optimizer state (resident between
steps) plus the peak of the tensors a step creates and holds at once (activations kept for the backward,
gradients, temporaries), from `benchmarks.harness.peak_bytes`. It leaves out the allocator's slack and the
interpreter, which are the same for both variants.

With `--from RUN` (a pretrained `specs/bert-tiny.toml` run) it also fine-tunes the sentiment demo both ways
at tiny size for the same steps (`specs/bert-tiny-sentiment.toml` and `-lora.toml`, 200 steps each) and
reports validation accuracy: what each reaches at equal steps.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from specc.compiler import compile_model
from specc.compiler.adapt import adapter_names
from specc.frontend import parse
from specc.graph import LayerGraph, build_graph
from specc.graph.subgraph import subgraph
from specc.runtime.config import TrainConfig
from specc.runtime.train.optim import freeze, make_optimizer
from specc.schema import validate

from benchmarks.harness import peak_bytes, time_once

SPECS = Path(__file__).resolve().parent.parent / "specs"
LORA = {"gpt": ['adapters.lora.targets=["h.*.attn.qkv", "h.*.attn.o", "h.*.mlp.fc_in", "h.*.mlp.fc_out"]'],
        "bert": ['adapters.lora.targets=["layer.*.attention.qkv", "layer.*.attention.o", "layer.*.ffn.fc_in", '
                 '"layer.*.ffn.fc_out"]', 'adapters.lora.train=["sentiment_head.*"]']}
COMMON = ["adapters.lora.rank=8", "adapters.lora.alpha=16"]
SPEC = {"gpt": ("gpt2-small.toml", "logits"), "bert": ("bert-base-sentiment.toml", "sentiment_logits")}
TINY = ["params.layers=2", "params.d_model=64", "params.heads=2", "params.d_ff=128"]


@dataclass
class Row:
    model: str
    variant: str
    step_s: list[float]
    peak: int
    trainable: int
    total: int
    optimizer_state: int


def _graph(family: str, lora: bool, tiny: bool) -> LayerGraph:
    spec, out = SPEC[family]
    sets = (TINY if tiny else []) + (LORA[family] + COMMON if lora else [])
    return subgraph(build_graph(validate(parse(SPECS / spec, sets))), [out])


def _step_fn(family: str, lora: bool, tiny: bool, batch: int, seq: int) -> tuple[Callable[[], None], torch.nn.Module,
                                                                                  torch.optim.Optimizer]:
    graph = _graph(family, lora, tiny)
    model = compile_model(graph).train()
    # LoRA: everything but the adapters (and the head, declared `train`) is frozen, as a LoRA fine-tune freezes it.
    scales = None
    if graph.adapters is not None:
        scales = {n: (1.0 if graph.adapters.trains_in_full(n) else 0.0) for n in graph.parameter_names()}
    freeze(model, scales)
    optimizer = make_optimizer(model, TrainConfig(lr=1e-4), scales)
    gen = torch.Generator().manual_seed(0)
    vocab = graph.nodes[next(n for n in graph.nodes if graph.nodes[n].op == "embedding")].params.vocab  # type: ignore[attr-defined]
    tokens = torch.randint(0, vocab, (batch, seq), generator=gen)
    labels = torch.randint(0, 2, (batch,), generator=gen)
    inputs = {"tokens": tokens} if family == "gpt" else {"tokens": tokens, "segments": torch.zeros_like(tokens),
                                                          "attention_mask": torch.ones_like(tokens)}
    out_name = SPEC[family][1]

    def step() -> None:
        out = model(**inputs)[out_name]
        if family == "gpt":
            loss = F.cross_entropy(out[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        else:
            loss = F.cross_entropy(out, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, model, optimizer


def _state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t))


def measure(family: str, lora: bool, tiny: bool, reps: int, batch: int, seq: int) -> Row:
    step, model, optimizer = _step_fn(family, lora, tiny, batch, seq)
    step()  # warm-up: creates the optimizer state
    times = [time_once(step) for _ in range(reps)]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    peak = weights + _state_bytes(optimizer) + peak_bytes(step)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert not lora or set(adapter_names(model)) <= {n for n, p in model.named_parameters() if p.requires_grad}
    return Row(f"{'gpt2-small' if family == 'gpt' else 'bert-base'}{' (tiny)' if tiny else ''}", "LoRA r=8" if lora else "full",
               times, peak, trainable, sum(p.numel() for p in model.parameters()), _state_bytes(optimizer))


def accuracy(source: str, steps: int) -> dict[str, float]:
    """Validation accuracy of the sentiment demo fine-tuned fully and with LoRA from `source`, `steps` each."""
    from specc.runtime.train.finetune import finetune

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in (("full", "bert-tiny-sentiment.toml"), ("LoRA r=8", "bert-tiny-sentiment-lora.toml")):
            sets = [f"tasks.sentiment.train.steps={steps}", f"tasks.sentiment.train.eval_every={steps}"]
            done = finetune(str(SPECS / spec), source, str(Path(tmp) / name), "sentiment", sets, quiet=True, say=lambda s: None)
            out[name] = done.evaluations[0].metrics["accuracy"]
    return out


def table(rows: list[Row]) -> str:
    lines = ["| model | variant | step time (s) | peak training memory | trainable parameters | optimizer state |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        full = next(x for x in rows if x.model == r.model and x.variant == "full")
        med = statistics.median(r.step_s)
        lines.append(f"| {r.model} | {r.variant} | {med:.2f} ({min(r.step_s):.2f}–{max(r.step_s):.2f}) | "
                     f"{r.peak / 2**20:,.0f} MiB ({r.peak / full.peak:.2f}×) | {r.trainable:,} ({100 * r.trainable / r.total:.2f} %) | "
                     f"{r.optimizer_state / 2**20:,.2f} MiB ({100 * r.optimizer_state / full.optimizer_state:.2f} %) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="toy sizes: checks that it runs, measures nothing")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--from", dest="source", metavar="RUN", help="a pretrained bert-tiny run, for the accuracy comparison")
    p.add_argument("--steps", type=int, default=200, help="fine-tuning steps of each accuracy run")
    args = p.parse_args(argv)
    rows = [measure(family, lora, args.tiny, args.reps, args.batch, args.seq) for family in ("gpt", "bert")
            for lora in (False, True)]
    print(f"{args.batch} x {args.seq} tokens per step, {args.reps} timed steps after one warm-up, "
          f"{torch.get_num_threads()} threads\n")
    print(table(rows))
    if args.source:
        acc = accuracy(args.source, args.steps)
        print(f"\nsentiment demo, bert-tiny from {args.source}, {args.steps} steps each: validation accuracy " +
              ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
