"""Build time: spec text → initialised module, stage by stage, against `transformers`' `from_config`;
and how build time, step time and memory scale with depth, width and sequence length."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

import specc
from specc.runtime.config import TrainConfig
from specc.runtime.train.optim import make_optimizer
from specc.compiler import compile_model, initialize
from specc.frontend import parse
from specc.graph import build_graph
from specc.schema import validate

from benchmarks.data import Source
from benchmarks.harness import interleave, peak_bytes
from benchmarks.models import SPECS, Shape, graph, hf_config
from benchmarks.train import Stepper, specc_loss

PUBLISHED = {"gpt": ("gpt2-small.toml", "AutoModelForCausalLM", "GPT2Config"),
             "bert": ("bert-base-pretraining.toml", "AutoModelForPreTraining", "BertConfig")}


def stages(path: Path, sets: list[str]) -> dict[str, float]:
    """Seconds of each compile stage of one spec file: parse, validate, graph, modules (meta + to_empty + ties), init."""
    out: dict[str, float] = {}
    t = time.perf_counter()
    raw = parse(path, sets)
    out["parse"], t = time.perf_counter() - t, time.perf_counter()
    spec = validate(raw)
    out["validate"], t = time.perf_counter() - t, time.perf_counter()
    g = build_graph(spec)
    out["graph"], t = time.perf_counter() - t, time.perf_counter()
    model = compile_model(g, init=False)
    out["modules"], t = time.perf_counter() - t, time.perf_counter()
    initialize(model, g)
    out["init"] = time.perf_counter() - t
    return out


def run_build(family: str, reps: int, shape: Shape | None = None) -> dict[str, Any]:
    """spec → module vs `from_config` for the same architecture (the published size, or `shape`), interleaved;
    and filling as many numbers with random values, alone."""
    import transformers

    spec, auto, config_cls = PUBLISHED[family]
    config = getattr(transformers, config_cls)() if shape is None else hf_config(family, shape, "sdpa")
    sets = [] if shape is None else shape.sets(family)
    meta = compile_model(specc.load_graph(SPECS / spec, sets), device="meta", init=False)
    n_params = sum(p.numel() for p in meta.parameters())
    stage_times: list[dict[str, float]] = []
    fns: dict[str, Callable[[], Any]] = {
        "transformers from_config": lambda: getattr(transformers, auto).from_config(config),
        "specc spec → module": lambda: stage_times.append(stages(SPECS / spec, sets)),
        "random fill alone": lambda: torch.empty(n_params).normal_(0.0, 0.02),
    }
    timings = interleave(fns, reps, warmup=1)
    median = {k: sorted(s[k] for s in stage_times)[len(stage_times) // 2] for k in stage_times[0]}
    return {"family": family, "spec": spec if shape is None else f"{spec} ({shape.name})", "params": n_params,
            "stages": median, "variants": {name: {"time": t.as_dict()} for name, t in timings.items()}}


def run_front(reps: int, cold: bool = True, spec: str = "bert-large.toml") -> dict[str, Any]:
    """parse + validate + graph of a 24-layer spec: warm (median in this process) and cold (a fresh process)."""
    path = SPECS / spec
    layers = specc.load_graph(path).spec.params["layers"]

    def front() -> None:
        build_graph(validate(parse(path)))

    warm = interleave({"front": front}, reps, warmup=1)["front"]
    code = ("import time, specc; from specc.frontend import parse; from specc.schema import validate; "
            "from specc.graph import build_graph; t = time.perf_counter(); "
            f"build_graph(validate(parse({str(path)!r}))); print(time.perf_counter() - t)")
    cold_s = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1]) \
        if cold else None
    return {"spec": spec, "layers": layers, "warm": warm.as_dict(), "cold_s": cold_s}


def run_scaling(base: Shape, points: dict[str, tuple[int, ...]], reps: int, device: str = "cpu") -> list[dict[str, Any]]:
    """specc's build time, causal-LM step time and peak step memory as one dimension of `base` changes."""
    rows = []
    for dim, values in points.items():
        for value in values:
            shape = base.with_(**{dim: value}, **({"d_ff": 4 * value} if dim == "d_model" else {}),
                               **({"max_seq": max(base.max_seq, value)} if dim == "seq" else {}))
            t0 = time.perf_counter()
            g = graph("gpt", shape)
            model = compile_model(g, device=device)
            build_s = time.perf_counter() - t0
            source = Source(("causal_lm",), shape.vocab, shape.seq)
            batch = source.batch(0, shape.batch).to(torch.device(device))
            step = Stepper(model.train(), specc_loss(model, source.objectives, batch), make_optimizer(model, TrainConfig()))
            t = interleave({"step": step}, reps, warmup=1, device=device)["step"]
            rows.append({"dim": dim, "value": value, "params": sum(p.numel() for p in model.parameters()),
                         "build_s": build_s, "step": t.as_dict(), "tokens_per_s": shape.batch * shape.seq / t.median,
                         "peak_bytes": peak_bytes(step, device)})
    return rows
