"""The op registry: one record per op (params, shape rule, counts, builder).

A spec can name only registered ops. Each record says which inputs the op
takes, how its output shape follows from its input shapes, which parameter
tensors it owns (names and shapes, so counts, ties and checkpoint mapping are
known before anything is built), its forward FLOPs per token, and how to
build its module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

Dim = int | str  # an int size, or a symbolic dimension such as "batch"
Shape = tuple[Dim, ...]
P = TypeVar("P", bound="OpParams")


class OpParams(BaseModel):
    """Base of every op's parameter schema: unknown keys are errors."""

    # strict: `true` is not the integer 1 and 4.5 is not the integer 4 (a float field still takes an int).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ShapeError(Exception):
    """An input shape an op cannot take; message names the mismatch, `param` the op parameter at fault (if one is)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class OpInput:
    name: str
    optional: bool = False


@dataclass(frozen=True)
class OpRecord(Generic[P]):
    name: str
    params: type[P]
    inputs: tuple[OpInput, ...]
    shape: Callable[[P, Mapping[str, Shape | None]], Shape]
    param_shapes: Callable[[P], dict[str, tuple[int, ...]]]
    build: Callable[[P], nn.Module]
    flops: Callable[[P, Mapping[str, Shape | None], int], int] = lambda p, s, t: 0
    doc: str = ""
    uses_cache: bool = False  # forward takes `cache=` (attention, positions)
    tags: frozenset[str] = field(default_factory=frozenset)

    def param_count(self, params: P) -> int:
        return sum(math.prod(s) for s in self.param_shapes(params).values())


REGISTRY: dict[str, OpRecord[Any]] = {}


def register(record: OpRecord[Any]) -> OpRecord[Any]:
    assert record.name not in REGISTRY, f"op {record.name} registered twice"
    REGISTRY[record.name] = record
    return record


def inputs(*names: str) -> tuple[OpInput, ...]:
    """`inputs("x", "mask?")`: names with a trailing `?` are optional."""
    return tuple(OpInput(n.rstrip("?"), n.endswith("?")) for n in names)


# -- shape helpers ------------------------------------------------------------
def fmt_shape(shape: Sequence[Dim]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def last_dim(shape: Shape | None, expected: int, what: str, param: str | None = None) -> Shape:
    """Check `shape`'s last dimension is `expected` (the op parameter `param`); return the shape."""
    assert shape is not None
    if not shape or shape[-1] != expected:
        raise ShapeError(f"{what} expects last dimension {expected}, got {fmt_shape(shape)}", param)
    return shape


def with_last(shape: Shape, size: int) -> Shape:
    return tuple(shape[:-1]) + (size,)


def broadcast(a: Shape, b: Shape) -> Shape:
    """Broadcast two shapes; symbolic dims must match by name, 1 broadcasts."""
    if len(a) != len(b):
        raise ShapeError(f"cannot combine {fmt_shape(a)} and {fmt_shape(b)}: ranks differ")
    out: list[Dim] = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ShapeError(f"cannot combine {fmt_shape(a)} and {fmt_shape(b)}: {x} vs {y}")
    return tuple(out)


def tokens_of(shape: Shape) -> Shape:
    """The leading dims of an activation: everything but the feature dim."""
    return tuple(shape[:-1])


# -- init helpers -------------------------------------------------------------
class Initialisable(nn.Module):
    """A module that fills its own parameters from a std and a generator."""

    def initialize(self, std: float, gen: torch.Generator) -> None:
        for module in self.children():
            if isinstance(module, Initialisable):
                module.initialize(std, gen)


_DONE = "_specc_initialised"


def claim(t: torch.Tensor) -> bool:
    """True the first time a tensor is initialised in a pass; a tied tensor is filled once."""
    if getattr(t, _DONE, False):
        return False
    setattr(t, _DONE, True)
    return True


def release(t: torch.Tensor) -> None:
    if hasattr(t, _DONE):
        delattr(t, _DONE)


def normal_(t: torch.Tensor, std: float, gen: torch.Generator) -> None:
    if claim(t):
        with torch.no_grad():
            t.normal_(0.0, std, generator=gen)


def fill_(t: torch.Tensor, value: float) -> None:
    if claim(t):
        with torch.no_grad():
            t.fill_(value)
