"""Canonical forms and content hashes of a spec.

Two canonical forms, for two jobs:

* `canonical_data` / `canonical_json`: the merged spec tree (after `extends`
  and `--set`) with `[params]` evaluated to numbers, as sorted-key JSON. It is
  what a checkpoint stores as ``spec.json`` and what rebuilds the model later.
  Both front ends (TOML, DSL) produce the same tree, so the same JSON.
* `canonical_graph`: the fully resolved architecture — every node of the
  expanded layer graph with its op, its validated parameters (defaults left
  out), its inputs and ties — plus the model's inputs, outputs and init. This
  is what `architecture_hash` digests, so the hash ignores formatting,
  comments, key order, front end, how a value is written (``"4 * d_model"`` or
  ``3072``, an explicit default or none, a param's name) and `name` /
  `description`, and changes whenever the built model would differ.

The runtime sections (`tokenizer`, `data`, `objective`, `train`, `tasks`) each
get their own hash of their sorted tree, so changing a learning rate never
changes the architecture's identity.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from specc.graph import LayerGraph, build_graph
from specc.schema import ModelSpec
from specc.schema.model import RUNTIME_SECTIONS

HASH_CHARS = 16  # 64 bits of SHA-256: plenty to tell architectures apart, short enough to read


def canonical_data(spec: ModelSpec) -> dict[str, Any]:
    """The merged spec tree with params resolved; stable across formatting and key order."""
    data = json.loads(json.dumps(spec.raw.data, sort_keys=True))
    data["params"] = dict(sorted(spec.params.items()))
    return data


def canonical_json(spec: ModelSpec) -> str:
    return json.dumps(canonical_data(spec), sort_keys=True, indent=1, ensure_ascii=False)


def canonical_graph(graph: LayerGraph) -> dict[str, Any]:
    """The resolved architecture as plain data: what the built model depends on, nothing else."""
    nodes = {}
    for node in graph.nodes.values():
        entry: dict[str, Any] = {"op": node.op, "params": node.params.model_dump(mode="json", exclude_defaults=True),
                                 "in": dict(node.inputs)}
        if node.ties:
            entry["ties"] = dict(node.ties)
        nodes[node.name] = entry
    return {
        "init": {"std": float(graph.spec.init_std), "seed": graph.spec.seed},
        "inputs": {name: str(t) for name, t in graph.inputs.items()},
        "outputs": dict(graph.outputs),
        "nodes": nodes,
    }


def canonical_graph_json(graph: LayerGraph) -> str:
    return json.dumps(canonical_graph(graph), sort_keys=True, indent=1, ensure_ascii=False)


def digest(value: Any) -> str:
    """Short SHA-256 of a JSON value serialised with sorted keys."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def architecture_hash(spec: ModelSpec | LayerGraph) -> str:
    """Hash of the resolved architecture (builds the layer graph when given a spec)."""
    graph = spec if isinstance(spec, LayerGraph) else build_graph(spec)
    return digest(canonical_graph(graph))


def section_hashes(spec: ModelSpec) -> dict[str, str]:
    """One hash per runtime section the spec declares (`train`, `objective`, ...)."""
    data = canonical_data(spec)
    return {k: digest(data[k]) for k in RUNTIME_SECTIONS if k in data}


def runtime_hash(spec: ModelSpec) -> str:
    """One hash over all runtime sections together (what a checkpoint's state records)."""
    data = canonical_data(spec)
    return digest({k: data.get(k) for k in RUNTIME_SECTIONS})


def hashes(graph: LayerGraph) -> dict[str, str]:
    """Architecture hash, then each declared runtime section's hash."""
    return {"architecture": architecture_hash(graph), **section_hashes(graph.spec)}
