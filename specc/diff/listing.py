"""A resolved spec as stable, line-oriented text: what `specc textconv` hands git.

One line per value or node, every expression evaluated, every `extends` and
override applied, runs of identical layers folded (``h.{0–11}.mlp = ...``), so
that git's line diff of two listings reads as a diff of meaning.
"""

from __future__ import annotations

import json
from typing import Any

from specc.canonical import canonical_data, hashes
from specc.diff.align import collapse, group_outputs, local_signature
from specc.graph import LayerGraph, Node
from specc.ops.base import fmt_shape
from specc.schema.model import RUNTIME_SECTIONS


def listing(graph: LayerGraph) -> str:
    spec = graph.spec
    found = hashes(graph)
    lines = [f"# {spec.name or spec.raw.file}: architecture {found['architecture']}, {graph.param_count():,} parameters"]
    if spec.description:
        lines.append(f"description = {spec.description}")
    for name, value in sorted(spec.params.items()):
        written = spec.raw.data.get("params", {}).get(name)
        lines.append(f"params.{name} = {_value(value)}" + (f"  # {written}" if isinstance(written, str) else ""))
    lines += [f"init.std = {_value(spec.init_std)}", f"init.seed = {spec.seed}"]
    lines += [f"input {k}: {t}" for k, t in graph.inputs.items()]
    lines += [f"output {k} = {spec.model.outputs[k]}" for k in graph.outputs]
    outs = group_outputs(graph)
    for group in graph.groups:
        if group.node is not None:
            lines.append(_node_line(group.node, "", {}, outs))
            continue
        inst = group.instances[0]
        kind = f"{inst.block} × {len(group.instances)}" if group.kind == "repeat" else inst.block
        params = sum(n.own_params() for i in group.instances for n in i.nodes)
        lines.append(f"{group.name} = {kind} ← {', '.join(_local_src(s, outs) for s in inst.inputs)}  {params:,} params")
        rows = []
        for i in group.instances:
            names = graph.spec.blocks[i.block].inputs
            ins = {src: f"<{n}>" for src, n in zip(i.inputs, names)}
            rows += [(n.name, _node_line(n, i.name + ".", ins, outs, qualified=False)) for n in i.nodes]
        lines += [f"  {name} = {text}" for name, text, _ in collapse(rows)]
    data = canonical_data(spec)
    for section in RUNTIME_SECTIONS:
        if section in data:
            lines += _flat(data[section], section)
    return "\n".join(lines) + "\n"


def _node_line(node: Node, prefix: str, inputs: dict[str, str], outs: dict[str, str], qualified: bool = True) -> str:
    sig = local_signature(node, prefix, inputs, outs)
    params = node.params.model_dump(mode="json", exclude_defaults=True)
    args = ", ".join(f"{k}={_value(v)}" for k, v in sorted(params.items()))
    ins = ", ".join(f"{k}={v}" for k, v in sig["in"].items())
    ties = f"  tied {', '.join(f'{k}={v}' for k, v in sig['ties'].items())}" if sig["ties"] else ""
    text = f"{node.op}({args}) ← {ins}  → {fmt_shape(node.shape)}  {node.own_params():,} params{ties}"
    return f"{node.name} = {text}" if qualified else text


def _local_src(src: str, outs: dict[str, str]) -> str:
    return outs.get(src, src)


def _flat(value: Any, path: str) -> list[str]:
    if isinstance(value, dict) and value:
        return [line for k in sorted(value) for line in _flat(value[k], f"{path}.{k}")]
    return [f"{path} = {_value(value)}"]


def _value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list, str, bool)) or value is None:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)
