"""What a picture of a layer graph shows: boxes, edges and clusters, blocks collapsed or expanded.

Collapsed (the default), a repeated block is one box (``h: decoder_layer × 12``);
expanded, each of its layers is a cluster of op boxes. Boxes carry parameter
counts, edges the symbolic shape of the tensor they carry, dashed edges the ties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specc.graph import Group, LayerGraph
from specc.ops.base import fmt_shape


@dataclass
class Box:
    id: str
    lines: list[str]
    kind: str  # "input", "output", "op", "block"
    cluster: str | None = None


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""
    tie: bool = False


@dataclass
class View:
    title: str
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)  # id → label


def view(graph: LayerGraph, expand: set[str] | None = None) -> View:
    """`expand`: names of block / repeat groups to draw node by node (None: all of them; empty: none)."""
    v = View(graph.spec.name or graph.spec.raw.file)
    owner: dict[str, str] = {}  # qualified node → the box that shows it
    for name, t in graph.inputs.items():
        v.boxes.append(Box(name, [name, str(t)], "input"))
        owner[name] = name
    for group in graph.groups:
        opened = group.node is None and (expand is None or group.name in expand)
        if group.node is not None:
            v.boxes.append(Box(group.name, [group.name, group.node.op, _count(group.node.own_params())], "op"))
            owner[group.name] = group.name
        elif not opened:
            v.boxes.append(Box(group.name, [group.name, _kind(group), _count(_params(group))], "block"))
            owner.update({n.name: group.name for i in group.instances for n in i.nodes})
        else:
            for inst in group.instances:
                v.clusters[inst.name] = f"{inst.name}: {inst.block}"
                for n in inst.nodes:
                    v.boxes.append(Box(n.name, [n.name.rsplit(".", 1)[-1], n.op, _count(n.own_params())], "op", inst.name))
                    owner[n.name] = n.name
    seen: set[tuple[str, str]] = set()
    for n in graph.nodes.values():
        for src in n.inputs.values():
            a, b = owner[src], owner[n.name]
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                v.edges.append(Edge(a, b, fmt_shape(graph.shape_of(src))))
        for own, target in n.ties.items():
            a, b = owner[n.name], owner[target.rpartition(".")[0]]
            if a != b:
                v.edges.append(Edge(b, a, f"tied {own}", tie=True))
    for name, src in graph.outputs.items():
        v.boxes.append(Box(f"out:{name}", [name, fmt_shape(graph.shape_of(src))], "output"))
        v.edges.append(Edge(owner[src], f"out:{name}", fmt_shape(graph.shape_of(src))))
    return v


def _kind(group: Group) -> str:
    block = group.instances[0].block
    return f"{block} × {len(group.instances)}" if group.kind == "repeat" else block


def _params(group: Group) -> int:
    return sum(n.own_params() for i in group.instances for n in i.nodes)


def _count(n: int) -> str:
    if n == 0:
        return ""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} params"
    return f"{n} params"
