"""subgraph: the part of a `LayerGraph` that some of its outputs need.

A fine-tuning task reads one head; the pretraining heads it inherits (a
masked-LM projection over the whole vocabulary, say) would cost compute and
memory for nothing. `subgraph` keeps the groups the chosen outputs depend on
(plus the owners of any weights they tie to) and the graph inputs they read.
Node and parameter names are unchanged, so checkpoints still map by name.
"""

from __future__ import annotations

from typing import Sequence

import networkx as nx

from specc.graph.types import Group, LayerGraph


def subgraph(graph: LayerGraph, outputs: Sequence[str]) -> LayerGraph:
    """`graph` restricted to what `outputs` (names of graph outputs) depend on."""
    targets = [graph.outputs[o] for o in outputs]
    needed = set(targets)
    for t in targets:
        needed |= nx.ancestors(graph.graph, t)
    owners = {t.rpartition(".")[0] for n in graph.nodes.values() if n.name in needed for t in n.ties.values()}
    for owner in owners - needed:  # owners of tied weights come along, with what they read
        needed |= {owner} | nx.ancestors(graph.graph, owner)
    groups = [g for g in graph.groups if any(n in needed for n in _members(g))]
    names = {n for g in groups for n in _members(g)}
    nodes = {k: v for k, v in graph.nodes.items() if k in names}
    inputs = {k: v for k, v in graph.inputs.items() if k in needed}
    sub = LayerGraph(graph.spec, inputs, {o: graph.outputs[o] for o in outputs}, groups, nodes)
    sub.check()
    sub.adapters = graph.adapters.restricted(sub) if graph.adapters is not None else None
    return sub


def _members(group: Group) -> list[str]:
    if group.node is not None:
        return [group.node.name]
    return [n.name for inst in group.instances for n in inst.nodes]
