"""Questions the runtime asks of a model's graph, answered from the op records' declared capabilities.

The runtime never names op classes or op names: it asks which nodes can do
something (`nodes_with(graph, "attention")`), how many positions the model
reads, how large its token vocabulary is. A new op that declares the
capability is found by every query without a change here.
"""

from __future__ import annotations

from typing import Any

from specc.graph.types import LayerGraph, Node
from specc.ops.base import Capability


def nodes_with(graph: LayerGraph, capability: Capability) -> list[Node]:
    """The graph's op nodes whose record declares `capability`, in graph order."""
    return [n for n in graph.nodes.values() if capability in n.record.capabilities]


def attention_nodes(graph: LayerGraph) -> list[tuple[str, Any]]:
    """(name, params) of every attention node; the params say `causal` and `cross`."""
    return [(n.name, n.params) for n in nodes_with(graph, "attention")]


def max_positions(graph: LayerGraph) -> int | None:
    """The most positions the model can read: the smallest `max_len` of its position tables (None: unbounded)."""
    return graph.max_positions()


def usable_positions(graph: LayerGraph) -> int | None:
    """Positions a sequence may use: each position table's `max_len` less its `offset` (BART's 2), the smallest."""
    lens = [v - (_int_param(n, "offset") or 0) for n in nodes_with(graph, "positions") if (v := _int_param(n, "max_len")) is not None]
    return min(lens) if lens else None


def token_vocab(graph: LayerGraph) -> int | None:
    """Rows of the model's largest token embedding (segment or type embeddings of under 16 rows are not token
    tables), or None when it has no embedding."""
    sizes = [v for n in nodes_with(graph, "embedding") if (v := _int_param(n, "vocab")) is not None]
    tokens = [v for v in sizes if v >= 16]
    return max(tokens) if tokens else None


def _int_param(node: Node, name: str) -> int | None:
    """The op parameter `name` of `node` when its op has one and it is an integer."""
    value = getattr(node.params, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
