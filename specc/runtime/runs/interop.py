"""Checkpoints from and to Hugging Face directories (the runtime side of `specc.hf`).

An imported checkpoint is one complete checkpoint directory (``COMPLETE``
inside, so a run folder and its checkpoint are the same path): the weights
(``model.safetensors``), the canonical spec (``spec.json``), ``state.json`` at
step 0, ``lineage.json`` naming the Hugging Face source, the source's
``config.json`` as ``hf_config.json``, and its tokenizer files as they were.
It has no optimizer state: start training from it with ``--warm-start``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import save_model
from torch import nn

from specc import jsonfile
from specc.atomic import atomic_dir
from specc.canonical import architecture_hash, canonical_json, runtime_hash
from specc.compiler import SpecModel, compile_model
from specc.compiler.adapt import merge
from specc.graph import LayerGraph
from specc.hf import HFTokenizer
from specc.runtime.runs import checkpoint, lineage
from specc.runtime.runs.checkpoint import MARKER, TrainState
from specc.runtime.errors import UserError
from specc.runtime.runs.transfer import load_run_weights

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
HF_CONFIG = "hf_config.json"


def save_imported(out: Path, graph: LayerGraph, model: nn.Module, source: Path, hf_class: str, force: bool = False) -> Path:
    """Write `model` (imported from HF directory `source`) as a complete checkpoint directory `out`."""
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} already exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out, replace=True) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        spec = graph.spec
        state = TrainState(arch_hash=architecture_hash(graph), runtime_hash=runtime_hash(spec), base=str(out.resolve().parent))
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=1))
        (tmp / "spec.json").write_text(canonical_json(spec))
        parent = {"huggingface": str(source.resolve()), "class": hf_class}
        (tmp / lineage.FILE).write_text(lineage.dumps(lineage.record(graph, parent)))
        shutil.copyfile(source / "config.json", tmp / HF_CONFIG)
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        (tmp / MARKER).write_text("0")
    return out


def load_checkpoint_model(run: Path, step: int | None = None, last: bool = False) -> tuple[LayerGraph, SpecModel, Path]:
    """The graph (from the stored spec) and model (with the weights) of a run's chosen checkpoint (its best
    unless `step` or `last` say otherwise); LoRA adapters are merged into the weights they adapt."""
    if not run.exists():
        raise UserError(f"run directory not found: {run}")
    ckpt = checkpoint.chosen(run, step, last)
    graph = lineage.stored_graph(ckpt)
    model = compile_model(graph, init=False)
    load_run_weights(ckpt, model, graph)
    if graph.adapters is not None:
        merge(model)
    return graph, model.eval(), ckpt


def checkpoint_tokenizer(ckpt: Path) -> HFTokenizer | None:
    """The checkpoint's tokenizer with its special tokens (from its tokenizer_config.json, else guessed)."""
    path = ckpt / "tokenizer.json"
    if not path.is_file() or path.stat().st_size == 0:
        return None
    return HFTokenizer.from_dir(ckpt)


def source_config(ckpt: Path) -> dict[str, Any]:
    """The Hugging Face config a checkpoint was imported from ({} for one trained by specc)."""
    path = ckpt / HF_CONFIG
    if not path.is_file():
        return {}
    return jsonfile.read_object(path, "the Hugging Face config it was imported from")
