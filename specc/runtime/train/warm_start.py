"""Warm start: a new architecture's first checkpoint, filled from an old checkpoint where it fits.

The new model is built and initialised from its spec's seed; every tensor the
compatibility table marks "loads" (same name, or a declared layer mapping, and
the same shape) is copied from the old checkpoint. The result is a complete
checkpoint at step 0 — fresh optimizer state, the old tokenizer, lineage naming
its parent — that `specc train SPEC --resume DIR` continues.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open

from specc import tensorcheck
from specc.canonical import architecture_hash, canonical_json, runtime_hash
from specc.compiler import compile_model
from specc.diff import Compat, SpecDiff, summary_line
from specc.frontend import parse
from specc.graph import build_graph
from specc.schema import validate
from specc.runtime.runs import checkpoint, lineage
from specc.runtime.runs.checkpoint import TrainState
from specc.runtime.config import load_run_config
from specc.runtime.errors import UserError
from specc.runtime.train.optim import make_optimizer


@dataclass
class WarmStart:
    source: Path  # the checkpoint the weights came from
    checkpoint: Path  # the new checkpoint
    diff: SpecDiff

    @property
    def compat(self) -> Compat:
        return self.diff.compat

    def report(self) -> str:
        c = self.compat
        total = c.numel("loads") + c.numel("reshaped") + c.numel("new")
        lines = [f"warm start: {self.source} → {self.checkpoint}",
                 f"  loaded {c.count('loads')} of {c.count('loads') + c.count('reshaped') + c.count('new')} tensors as they are "
                 f"({c.numel('loads'):,} of {total:,} parameters); {c.count('reshaped')} changed shape and "
                 f"{c.count('new')} are new (both initialised from the spec's seed); {c.count('dropped')} old tensors unused",
                 f"  {summary_line(self.diff)}"]
        if c.mapping:
            lines.append(f"  layer mappings: {', '.join(c.mapping)}")
        return "\n".join(lines)


def warm_start(source: str | os.PathLike[str], spec_path: str | os.PathLike[str], out: str | os.PathLike[str],
               sets: Sequence[str] = (), search_paths: Sequence[str] = (), mapping: Sequence[str] = ()) -> WarmStart:
    """Build `spec_path`'s model, load what fits from `source`, and save it as `out`'s step-0 checkpoint."""
    src = checkpoint.require_latest(Path(source))
    out_dir = Path(out)
    if checkpoint.latest(out_dir) is not None:
        raise UserError(f"{out_dir} already holds a run; warm-start into a new folder")
    spec = validate(parse(spec_path, sets, search_paths))
    graph = build_graph(spec)
    config = load_run_config(spec)
    diff = lineage.checkpoint_diff(src, graph, str(spec_path), tuple(mapping))
    model = compile_model(graph)
    old = lineage.stored_graph(src)
    _, in_file = lineage.stored_tensors(src, old)
    load_fitting(model, src / "model.safetensors", diff.compat, in_file)
    torch.manual_seed(config.train.seed)
    optimizer = make_optimizer(model, config.train)
    state = TrainState(arch_hash=architecture_hash(graph), runtime_hash=runtime_hash(spec),
                       base=str(Path(spec_path).resolve().parent))
    tokenizer = src / "tokenizer.json"
    c = diff.compat
    parent = {"checkpoint": str(src), "arch_hash": diff.old_hash, "loaded": c.count("loads"), "reshaped": c.count("reshaped"),
              "new": c.count("new"), "dropped": c.count("dropped"), "mapping": list(mapping)}
    saved = checkpoint.save(out_dir, state, model, optimizer, canonical_json(spec),
                            tokenizer.read_text() if tokenizer.exists() else "", config.train.keep,
                            extras={lineage.FILE: lineage.dumps(lineage.record(graph, parent))})
    return WarmStart(src, saved, diff)


def load_fitting(model: torch.nn.Module, path: Path, compat: Compat, in_file: dict[str, str]) -> None:
    """Copy every tensor the table marks "loads" from the file into the model."""
    with safe_open(str(path), "pt") as f, torch.no_grad():
        for t in compat.tensors:
            if t.fit == "loads":
                assert t.source is not None
                _copy_checked(model.get_parameter(t.name), f.get_tensor(in_file[t.source]), path, t.source)


def _copy_checked(param: torch.Tensor, stored: torch.Tensor, path: Path, name: str) -> None:
    bad = tensorcheck.problem(stored)
    if bad:
        raise UserError(f"cannot load weights from {path}: tensor {name} {bad}")
    param.copy_(stored)
