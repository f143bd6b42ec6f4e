"""Graph stage: `build_graph(ModelSpec) -> LayerGraph`.

`build_graph` is imported when first asked for (PEP 562): the runtime's records and `specc ops` name `LayerGraph`
in their signatures without building a graph, so they skip networkx and the builder (tests/test_startup.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specc.graph.types import BlockInstance, Group, LayerGraph, Node

if TYPE_CHECKING:
    from specc.graph.build import build_graph

__all__ = ["build_graph", "BlockInstance", "Group", "LayerGraph", "Node"]


def __getattr__(name: str) -> Any:
    if name == "build_graph":
        from specc.graph.build import build_graph

        return build_graph
    raise AttributeError(f"module 'specc.graph' has no attribute '{name}'")
