"""The data of a semantic diff: plain dataclasses, so `--json` is `asdict`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["added", "removed", "changed"]
Fit = Literal["loads", "reshaped", "new", "dropped"]


@dataclass
class ValueChange:
    """One value that differs: a `[params]` entry, a runtime setting, the model's inputs."""

    path: str  # "params.d_ff", "train.lr", "model.inputs.tokens"
    status: Status
    old: Any = None
    new: Any = None
    old_at: str | None = None  # where A sets it, e.g. "specs/bert-base.toml:14:8 (base file)"
    new_at: str | None = None
    expr: str | None = None  # the expression B writes, when the value is computed ("4 * d_model")


@dataclass
class NodeChange:
    """A node (or the same node in a run of layers, `h.{0–11}.mlp`) added, removed or changed."""

    node: str
    status: Status
    op: str
    details: list[str] = field(default_factory=list)  # "d_ff 3072 → 4096", "output [b, s, 768] → [b, s, 1024]"
    at: str | None = None  # where B (or A, for a removal) writes the node
    count: int = 1  # how many concrete nodes the entry stands for


@dataclass
class GroupDelta:
    """One top-level entry of the model: its kind, layers, parameters and FLOPs/token on both sides."""

    name: str
    status: Status | Literal["same"]
    kind_old: str | None
    kind_new: str | None
    params_old: int
    params_new: int
    flops_old: int
    flops_new: int
    layers: str | None = None  # alignment of repeated blocks, e.g. "12 → 13: 1 inserted at h.3"


@dataclass
class TensorFit:
    """How one checkpoint tensor of A fares in B."""

    name: str  # the tensor's name in B (in A for a dropped one)
    fit: Fit
    source: str | None  # the tensor of A it is loaded from (None for a new one)
    old_shape: list[int] | None
    new_shape: list[int] | None


@dataclass
class Compat:
    """Which tensors of a checkpoint of `source` load into `target`, by name and shape."""

    source: str
    target: str
    tensors: list[TensorFit]
    mapping: list[str] = field(default_factory=list)  # declared layer mappings used ("h.6:12=h.0:6")
    suggested: list[str] = field(default_factory=list)  # mappings the block alignment suggests

    def count(self, fit: Fit) -> int:
        return sum(1 for t in self.tensors if t.fit == fit)

    def numel(self, fit: Fit) -> int:
        shape = (lambda t: t.old_shape) if fit == "dropped" else (lambda t: t.new_shape)
        total = 0
        for t in self.tensors:
            if t.fit == fit:
                n = 1
                for d in shape(t) or []:
                    n *= d
                total += n
        return total


@dataclass
class SpecDiff:
    old: str  # labels: file or checkpoint path
    new: str
    old_hash: str
    new_hash: str
    context: int  # keys attention sees, for FLOPs per token
    headline: list[str]
    params: list[ValueChange]
    model: list[ValueChange]  # name, description, init, inputs, outputs
    groups: list[GroupDelta]
    nodes: list[NodeChange]
    sections: list[ValueChange]  # tokenizer, data, objective, train, tasks
    section_hashes: dict[str, list[str | None]]  # section → [old, new] when they differ
    compat: Compat
    params_old: int = 0
    params_new: int = 0
    flops_old: int = 0
    flops_new: int = 0

    @property
    def same_architecture(self) -> bool:
        return self.old_hash == self.new_hash

    @property
    def empty(self) -> bool:
        return self.same_architecture and not (self.params or self.model or self.sections)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["same_architecture"] = self.same_architecture
        return out
