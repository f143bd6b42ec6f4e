"""Adapters: the `[adapters.lora]` section, resolved against a built `LayerGraph`.

LoRA is a transform of the graph, not part of the architecture: the graph
keeps its nodes (so its architecture hash is unchanged) and carries an
`Adapters` record naming the linear layers that get a low-rank update, which
the compiler attaches (`specc.compiler.adapt`). Targets are name patterns
(`specc.graph.names`) over the model's linear layers, e.g. ``h.*.attn.qkv``;
`train` patterns name further parameters that train in full (a task's head).
Everything else is frozen when an adapted model is fine-tuned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from specc.diagnostics import Collector, did_you_mean
from specc.graph.names import matches, pattern
from specc.graph.types import LayerGraph, Node
from specc.tensorcheck import TOO_LARGE_HINT, past_tensor_limit
from specc.schema.errors import diagnostics_from


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)  # built by specs with adapters

    targets: list[str] = Field(min_length=1)  # linear layers, e.g. ["*.attn.qkv", "*.ffn.*"]
    rank: int = Field(default=8, gt=0)
    alpha: float | None = Field(default=None, gt=0)  # the update is scaled by alpha / rank; default alpha = rank
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)  # on the update's input
    train: list[str] = Field(default_factory=list)  # parameters trained in full besides the adapters


class AdaptersSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)  # built by specs with adapters

    lora: LoraSpec | None = None


@dataclass(frozen=True)
class Adapters:
    """The resolved adapters of a graph: LoRA settings and the layers it adapts (name → (in, out))."""

    lora: LoraSpec
    layers: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def alpha(self) -> float:
        return self.lora.alpha if self.lora.alpha is not None else float(self.lora.rank)

    def parameter_names(self) -> dict[str, tuple[int, ...]]:
        r = self.lora.rank
        out: dict[str, tuple[int, ...]] = {}
        for name, (d_in, d_out) in self.layers.items():
            out[f"{name}.lora.a"], out[f"{name}.lora.b"] = (r, d_in), (d_out, r)
        return out

    def trains_in_full(self, name: str) -> bool:
        """Whether a base parameter trains with the adapters (a `train` pattern names it)."""
        return matches(name, self.lora.train)

    def restricted(self, graph: LayerGraph) -> Adapters:
        """These adapters on a part of the graph (`specc.graph.subgraph`)."""
        def owner_kept(layer: str) -> bool:
            parts = layer.split(".")
            return any(".".join(parts[:i]) in graph.nodes for i in range(1, len(parts) + 1))

        return Adapters(self.lora, {k: v for k, v in self.layers.items() if owner_kept(k)})


def resolve_adapters(graph: LayerGraph, diags: Collector) -> Adapters | None:
    """The spec's `[adapters]` section against the built graph; every mistake located in the spec."""
    raw = graph.spec.raw
    table = graph.spec.sections.get("adapters")
    if table is None:
        return None
    try:
        spec = AdaptersSpec.model_validate(table)
    except ValidationError as err:
        diags.extend(diagnostics_from(err, raw, AdaptersSpec, ("adapters",)))
        return None
    if spec.lora is None:
        diags.error("E083", "[adapters] declares no adapter", raw.key_span(("adapters",)), "declare [adapters.lora]")
        return None
    where = ("adapters", "lora")
    try:
        candidates = linear_layers(graph)
    except TooLarge as err:
        diags.error("E050", f"node '{err.node.name}': a parameter has more elements than a tensor can hold (2**63)",
                    err.node.span, TOO_LARGE_HINT)
        return None
    layers: dict[str, tuple[int, int]] = {}
    for i, text in enumerate(spec.lora.targets):
        found = {k: v for k, v in candidates.items() if pattern(text).fullmatch(k)}
        if not found:
            diags.error("E083", f"LoRA target '{text}' matches no linear layer of the model",
                        raw.value_span(where + ("targets", i)) or raw.value_span(where + ("targets",)),
                        did_you_mean(text, candidates) or "linear layers: " + ", ".join(_examples(candidates)))
        layers.update(found)
    for name, (d_in, d_out) in layers.items():
        if spec.lora.rank > min(d_in, d_out):
            diags.error("E084", f"LoRA rank {spec.lora.rank} exceeds layer '{name}' ({d_in} → {d_out}); a rank above "
                        f"{min(d_in, d_out)} adds parameters and no expressiveness", raw.value_span(where + ("rank",)))
            break
    names = graph.parameter_names()
    for i, text in enumerate(spec.lora.train):
        if not any(pattern(text).fullmatch(n) for n in names):
            diags.error("E083", f"train pattern '{text}' matches no parameter of the model",
                        raw.value_span(where + ("train", i)) or raw.value_span(where + ("train",)),
                        did_you_mean(text, names) or "parameters such as " + ", ".join(list(names)[:3]))
    return Adapters(spec.lora, dict(sorted(layers.items(), key=lambda kv: list(candidates).index(kv[0]))))


def linear_layers(graph: LayerGraph) -> dict[str, tuple[int, int]]:
    """Every linear layer LoRA can adapt, name → (in, out), in graph order: not a vocabulary projection
    (its weight is read directly by the chunked loss) and not tied (an update would reach the other user)."""
    tied = {t for n in graph.nodes.values() for t in n.ties.values()} | \
        {f"{n.name}.{own}" for n in graph.nodes.values() for own in n.ties}
    cache: dict[str, dict[str, tuple[int, int]]] = {}
    out: dict[str, tuple[int, int]] = {}
    for node in graph.nodes.values():
        key = node.op + json.dumps(node.params.model_dump(mode="json"), sort_keys=True)
        if key not in cache:
            cache[key] = _linears_of(node)
        for sub, dims in cache[key].items():
            name = f"{node.name}.{sub}" if sub else node.name
            if f"{name}.weight" not in tied:
                out[name] = dims
    return out


class TooLarge(Exception):
    """A node whose module cannot be built even on the meta device (a tensor past 2**63 elements)."""

    def __init__(self, node: Node):
        super().__init__(node.name)
        self.node = node


def _linears_of(node: Node) -> dict[str, tuple[int, int]]:
    # The modules themselves say which linears they hold: torch is imported here, for a spec with [adapters]
    # only, so that checking any other spec stays torch-free (tests/test_startup.py).
    import torch

    from specc.ops.heads import VocabProjection
    from specc.ops.layers import Linear

    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            module = node.record.build(node.params)
    except (RuntimeError, TypeError) as err:  # the compiler's E050, said here at the node
        if not past_tensor_limit(err):
            raise
        raise TooLarge(node) from None
    return {name: (m.weight.shape[1], m.weight.shape[0]) for name, m in module.named_modules()
            if isinstance(m, Linear) and not isinstance(m, VocabProjection)}


def _examples(names: Mapping[str, Any]) -> list[str]:
    shown = list(names)[:4]
    return shown + [f"... ({len(names)} in all)"] if len(names) > 4 else shown or ["none"]
