"""Graph stage: `build_graph(ModelSpec) -> LayerGraph`."""

from specc.graph.build import build_graph
from specc.graph.types import BlockInstance, Group, LayerGraph, Node

__all__ = ["build_graph", "BlockInstance", "Group", "LayerGraph", "Node"]
