"""The op registry: one record per op (params, shape rule, counts, builder).

A spec can name only registered ops. Each record says which inputs the op
takes, how its output shape follows from its input shapes, which parameter
tensors it owns (names and shapes, so counts, ties and checkpoint mapping are
known before anything is built), its forward FLOPs per token, and where its
module is built. This module and the records (`specc/ops/records/`) import no
torch, so checking, hashing and diffing a spec never loads it: a record names
its builder as "module:callable", imported on the first `build`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generic, Literal, Mapping, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict

from specc.registry import Registry

if TYPE_CHECKING:
    from torch import nn

Dim = int | str  # an int size, or a symbolic dimension such as "batch"
# What an op declares it is, so later stages ask by capability instead of by class or op name:
#   norm        a normalisation: its parameters take no weight decay (`no_decay = ["norm"]`)
#   embedding   a lookup table of ids (token, segment) with a `vocab` param: no weight decay ("embedding")
#   positions   position information (learned table with `max_len`, sinusoid, relative bias): no weight decay
#   vocab_head  projects to vocabulary logits (LM / MLM heads)
#   attention   attention, with `causal` and `cross` params
Capability = Literal["norm", "embedding", "positions", "vocab_head", "attention"]
NO_DECAY: dict[str, str] = {"norm": "norm", "embedding": "embedding", "positions": "embedding"}  # capability → no_decay kind
Shape = tuple[Dim, ...]
P = TypeVar("P", bound="OpParams")


class OpParams(BaseModel):
    """Base of every op's parameter schema: unknown keys are errors."""

    # strict: `true` is not the integer 1 and 4.5 is not the integer 4 (a float field still takes an int).
    # defer_build: an op's validator is built the first time a node of that op is validated, so checking a spec
    # builds those of the ops it uses only.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False, defer_build=True)


class ShapeError(Exception):
    """An input shape an op cannot take; message names the mismatch, `param` the op parameter at fault (if one is)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class ParamError(ValueError):
    """Parameters that do not fit together: `param` is the one to change, `hint` says what would fit.

    Raised by a params model's validator; pydantic keeps the exception, so the graph builder can put the
    caret on that parameter's value (E041) and show the hint.
    """

    def __init__(self, message: str, param: str, hint: str | None = None):
        super().__init__(message)
        self.param, self.hint = param, hint


def divisors(n: int, upto: int = 4096) -> str:
    """n's divisors up to `upto`, listed for a hint ("1, 2, 4, 8", then "…" past the bound). The bound keeps
    a hostile n (2**63 - 1) from meaning a scan of 2**63 numbers."""
    shown = ", ".join(str(d) for d in range(1, min(n, upto) + 1) if n % d == 0)
    return shown + (", …" if n > upto else "")


@dataclass(frozen=True)
class OpInput:
    name: str
    optional: bool = False


@dataclass(frozen=True)
class Example:
    """A node using the op, for the reference (`specc ops`): its name, inputs (in order, or by name) and keys."""

    node: str
    inputs: tuple[str, ...] | Mapping[str, str]
    params: Mapping[str, Any]


@dataclass(frozen=True)
class OpRecord(Generic[P]):
    name: str
    params: type[P]
    inputs: tuple[OpInput, ...]
    shape: Callable[[P, Mapping[str, Shape | None]], Shape]
    param_shapes: Callable[[P], dict[str, tuple[int, ...]]]
    builder: str  # "module:callable" taking the params, e.g. "specc.ops.attention:Attention"
    flops: Callable[[P, Mapping[str, Shape | None], int], int] = lambda p, s, t: 0
    doc: str = ""
    shape_rule: str = ""  # the output shape in words, for the reference
    example: Example | None = None
    uses_cache: bool = False  # forward takes `cache=` (attention, positions)
    capabilities: frozenset[Capability] = field(default_factory=frozenset)

    def no_decay_kind(self) -> str | None:
        """The `no_decay` kind ("norm", "embedding") of this op's parameters, if a capability puts them there."""
        return next((NO_DECAY[c] for c in sorted(self.capabilities) if c in NO_DECAY), None)

    def param_count(self, params: P) -> int:
        return sum(math.prod(s) for s in self.param_shapes(params).values())

    def build(self, params: P) -> nn.Module:
        """The op's module (this imports torch)."""
        module, _, name = self.builder.partition(":")
        make: Callable[[P], nn.Module] = getattr(importlib.import_module(module), name)
        return make(params)


REGISTRY: Registry[OpRecord[Any]] = Registry("op")
register = REGISTRY.register


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
