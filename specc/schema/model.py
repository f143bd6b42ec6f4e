"""Pydantic models of a spec's structure (what the text must look like).

These validate shape and types only; expressions stay strings here and are
evaluated by `specc.schema.resolve` and, per block instance, by the graph stage.
"""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

from specc.version import FORMAT_VERSION as FORMAT_VERSION  # kept here too: the schema's readers import it from here

Scalar = Union[bool, int, float, str]


class Strict(BaseModel):
    # `true` is not the integer 1. The validator is built on first use (`defer_build`): commands that read no spec
    # (`specc ops`) skip building it, and the document model builds its parts once, inside its own schema.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True, defer_build=True)


class OverrideSpec(Strict):
    """Different block parameters for a range of repeated layers, e.g. ``layers = "6:12"``."""

    layers: Union[str, int]
    with_: dict[str, Scalar] = Field(default_factory=dict, alias="with")


class NodeSpec(BaseModel):
    """One node: an op (its params are the extra keys) or an instance of a block."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True, defer_build=True)

    op: str | None = None
    block: str | None = None
    in_: Union[str, list[str], dict[str, str]] = Field(default_factory=list, alias="in")
    repeat: Union[int, str, None] = None
    with_: dict[str, Scalar] = Field(default_factory=dict, alias="with")
    overrides: list[OverrideSpec] = Field(default_factory=list)
    tie: Union[str, dict[str, str], None] = None

    def op_params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class BlockSpec(Strict):
    """A reusable, parametrised subgraph with named inputs and one output."""

    params: dict[str, Scalar] = Field(default_factory=dict)
    inputs: list[str]
    output: str
    nodes: dict[str, NodeSpec]


class GraphSpecRaw(Strict):
    inputs: dict[str, str]
    outputs: dict[str, str]
    nodes: dict[str, NodeSpec]


class InitSpec(Strict):
    std: Union[float, str] = 0.02
    seed: Union[int, str] = 0


class SpecDoc(Strict):
    """The whole document. Runtime sections are validated by their own registries."""

    format: int
    name: str = ""
    description: str = ""
    params: dict[str, Scalar] = Field(default_factory=dict)
    init: InitSpec = Field(default_factory=InitSpec)
    blocks: dict[str, BlockSpec] = Field(default_factory=dict)
    model: GraphSpecRaw
    tokenizer: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    objective: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    tasks: dict[str, Any] | None = None
    adapters: dict[str, Any] | None = None  # LoRA (specc.graph.adapters): a transform, hashed apart from the architecture

# Sections outside the architecture: each is hashed on its own, and changing one never changes the architecture hash.
RUNTIME_SECTIONS = ("tokenizer", "data", "objective", "train", "tasks", "adapters")
