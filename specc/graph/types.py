"""The layer graph IR: `Node`, `BlockInstance`, `Group` and `LayerGraph`.

Names are qualified and stable (`h.3.attn`), so parameter names in compiled
modules (`h.3.attn.qkv.weight`) map back to spec nodes and their spans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from specc.diagnostics import Span
from specc.ops.base import REGISTRY, OpParams, OpRecord, Shape
from specc.schema import ModelSpec, TensorType

if TYPE_CHECKING:
    import networkx as nx

    from specc.graph.adapters import Adapters


@dataclass
class Node:
    name: str  # qualified, e.g. "h.3.attn"
    op: str
    params: OpParams
    inputs: dict[str, str]  # op input name → qualified source (node or graph input)
    shape: Shape
    span: Span | None
    ties: dict[str, str] = field(default_factory=dict)  # own param → qualified param it shares
    block: str | None = None

    @property
    def record(self) -> OpRecord[Any]:
        return REGISTRY[self.op]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.record.param_shapes(self.params)

    def own_params(self) -> int:
        """Parameters this node owns (tied ones belong to their target)."""
        return sum(math.prod(s) for n, s in self.param_shapes().items() if n not in self.ties)


@dataclass
class BlockInstance:
    name: str  # "h.3", or "enc" for a block used once without repeat
    block: str
    inputs: list[str]  # qualified sources, in the block's input order
    nodes: list[Node]  # topological order
    output: str  # qualified node name


@dataclass
class Group:
    """One top-level entry of the model, in execution order."""

    name: str
    kind: Literal["op", "block", "repeat"]
    node: Node | None = None
    instances: list[BlockInstance] = field(default_factory=list)
    span: Span | None = None

    @property
    def output(self) -> str:
        return self.node.name if self.node is not None else self.instances[-1].output


@dataclass
class LayerGraph:
    spec: ModelSpec
    inputs: dict[str, TensorType]
    outputs: dict[str, str]  # output name → qualified node
    groups: list[Group]
    nodes: dict[str, Node]  # every node, qualified, in execution order
    adapters: Adapters | None = None  # LoRA layers (specc.graph.adapters): not part of the architecture

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The data edges as a networkx DiGraph: the graph inputs, then the nodes in execution order, an edge from
        each source a node reads. Made on first use (the compiler, `subgraph`): building and checking a graph
        needs only `nodes`, so `specc check` never imports networkx (tests/test_startup.py)."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.inputs)
        for node in self.nodes.values():
            g.add_node(node.name)
            g.add_edges_from((src, node.name) for src in node.inputs.values())
        return g

    def shape_of(self, name: str) -> Shape:
        if name in self.inputs:
            return self.inputs[name].dims
        if name in self.nodes:
            return self.nodes[name].shape
        group = next(g for g in self.groups if g.name == name)
        return self.nodes[group.output].shape

    def param_count(self) -> int:
        return sum(n.own_params() for n in self.nodes.values())

    def max_positions(self) -> int | None:
        """The longest sequence the learned position tables hold (None: no such table limits it)."""
        lens = [getattr(n.params, "max_len") for n in self.nodes.values()  # by the ops' declared capability
                if "positions" in n.record.capabilities and isinstance(getattr(n.params, "max_len", None), int)]
        return min(lens) if lens else None

    def flops_per_token(self, context: int) -> int:
        """Forward FLOPs per token with `context` keys visible to attention."""
        total = 0
        for n in self.nodes.values():
            shapes = {k: self.shape_of(v) for k, v in n.inputs.items()}
            total += n.record.flops(n.params, shapes, context)
        return total

    def parameter_names(self) -> dict[str, tuple[int, ...]]:
        """Every parameter tensor the compiled model will have (ties listed once, under the owner)."""
        out: dict[str, tuple[int, ...]] = {}
        for n in self.nodes.values():
            for pname, shape in n.param_shapes().items():
                if pname not in n.ties:
                    out[f"{n.name}.{pname}"] = shape
        return out

    def check(self) -> None:
        """Lint the IR's invariants (internal consistency, not user mistakes)."""
        seen = set(self.inputs)
        for n in self.nodes.values():  # execution order is a topological order: the graph has no cycle
            for src in n.inputs.values():
                assert src in seen, f"{n.name} reads {src}, which is undefined or runs after it"
            seen.add(n.name)
            for own, target in n.ties.items():
                owner, _, pname = target.rpartition(".")
                assert owner in self.nodes and pname in self.nodes[owner].param_shapes(), f"bad tie {target}"
                assert n.param_shapes()[own] == self.nodes[owner].param_shapes()[pname], f"tie shape {n.name}.{own}"
        for out in self.outputs.values():
            assert out in self.nodes or out in self.inputs, f"output {out} undefined"
