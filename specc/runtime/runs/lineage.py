"""Checkpoint lineage: what a checkpoint was built from, and whether a spec may resume it.

Every checkpoint holds ``lineage.json``: the spec's source text (every file of
its `extends` chain), its architecture and section hashes, the specc, torch and
Python versions, and — for a warm start — the checkpoint it started from and
what loaded. Resuming onto a different architecture is refused with the
semantic diff of the two.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from specc import jsonfile
from specc.canonical import hashes, runtime_hash
from specc.diagnostics import SpecError
from specc.diff import SpecDiff, compat_table, diff_graphs, render_text, summary_line
from specc.graph import LayerGraph, build_graph
from specc.migrate import upgrade_data
from specc.raw import RawSpec, SpanTable
from specc.schema import ModelSpec, validate
from specc.runtime.errors import UserError
from specc.version import __version__

FILE = "lineage.json"


def record(graph: LayerGraph, parent: dict[str, Any] | None = None) -> dict[str, Any]:
    """The lineage of a checkpoint of `graph`'s spec (`parent`: where its weights came from)."""
    spec = graph.spec
    return {
        "spec_file": spec.raw.file,
        "spec_sources": dict(spec.raw.sources),
        "hashes": hashes(graph),
        "runtime_hash": runtime_hash(spec),
        "specc_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "parent": parent,
    }


def files(graph: LayerGraph, run_dir: Path) -> dict[str, str]:
    """The lineage file of a run's next checkpoint; a warm-started run keeps naming its parent."""
    from specc.runtime.runs import checkpoint

    previous = checkpoint.latest(run_dir)
    parent = read(previous).get("parent") if previous is not None else None
    return {FILE: dumps(record(graph, parent))}


def dumps(rec: dict[str, Any]) -> str:
    return json.dumps(rec, indent=1, ensure_ascii=False)


def read(ckpt: Path) -> dict[str, Any]:
    """A checkpoint's lineage; {} for one written before lineage existed."""
    if not (ckpt / FILE).exists():
        return {}
    return jsonfile.read_object(ckpt / FILE, "a checkpoint's lineage")


def stored_spec(ckpt: Path) -> ModelSpec:
    """The spec a checkpoint stores (its canonical ``spec.json``), at this specc's format; a damaged or
    foreign file is a `UserError` naming it."""
    file = ckpt / "spec.json"
    data = jsonfile.read(file, "a checkpoint's spec")
    if not isinstance(data, dict):
        raise UserError(f"{file} does not hold a spec")
    try:
        data, _ = upgrade_data(data)  # a checkpoint written at an older spec format
        return validate(RawSpec(data, SpanTable(), str(file), {}))
    except SpecError as err:
        raise UserError(f"{file} is not a valid spec for this specc:\n{err.render()}") from None


def stored_graph(ckpt: Path) -> LayerGraph:
    """The layer graph of the spec a checkpoint stores."""
    spec = stored_spec(ckpt)
    try:
        return build_graph(spec)
    except SpecError as err:
        raise UserError(f"{ckpt / 'spec.json'} is not a valid spec for this specc:\n{err.render()}") from None


def stored_tensors(ckpt: Path, graph: LayerGraph) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Tensor shapes in ``model.safetensors`` under their owners' names, and owner name → name in the file.

    A tied tensor is stored once under one of its names (safetensors picks
    which); `graph`'s ties say which owner that name stands for.
    """
    alias = {f"{n.name}.{own}": target for n in graph.nodes.values() for own, target in n.ties.items()}
    path = ckpt / "model.safetensors"
    shapes: dict[str, tuple[int, ...]] = {}
    in_file: dict[str, str] = {}
    try:
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                name = alias.get(key, key)
                shapes[name] = tuple(f.get_slice(key).get_shape())
                in_file[name] = key
    except (SafetensorError, OSError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    return shapes, in_file


def checkpoint_diff(ckpt: Path, graph: LayerGraph, label: str, mapping: tuple[str, ...] = ()) -> SpecDiff:
    """The diff from a checkpoint's stored spec to `graph`, with the checkpoint's real tensors as the source."""
    old = stored_graph(ckpt)
    shapes, _ = stored_tensors(ckpt, old)
    compat = compat_table(shapes, graph.parameter_names(), mapping, source_label=str(ckpt), target_label=label)
    return diff_graphs(old, graph, str(ckpt), label, compat=compat)


def check_resume(ckpt: Path, graph: LayerGraph, stored_hash: str) -> None:
    """Refuse to resume `ckpt` with a different architecture, showing the semantic diff."""
    try:
        diff = checkpoint_diff(ckpt, graph, graph.spec.raw.file)
    except UserError:
        # No readable stored spec: the recorded hash is all there is to compare.
        if stored_hash != hashes(graph)["architecture"]:
            raise UserError(f"--resume: {ckpt} was trained with architecture {stored_hash}, this spec is "
                            f"{hashes(graph)['architecture']}; resuming onto a different architecture is refused") from None
        return
    if diff.same_architecture:
        return
    spec = graph.spec.raw.file
    raise UserError(
        f"--resume: {ckpt} was trained with a different architecture; resuming onto it is refused.\n"
        f"  {summary_line(diff)}\n\n{render_text(diff)}\n\n"
        f"to start this architecture from that checkpoint's weights (what fits loads), run\n"
        f"  specc train {spec} --warm-start {ckpt} --out NEW_RUN_DIR\n"
        f"or `specc warm-start {ckpt} {spec} --out NEW_RUN_DIR` and then `specc train {spec} --resume NEW_RUN_DIR`")
