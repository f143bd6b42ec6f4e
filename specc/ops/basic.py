"""Elementwise and per-feature ops: linear, norms, activation, add, dropout, scale, pool."""

from __future__ import annotations

from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from specc.ops.base import (
    Initialisable, OpParams, OpRecord, Shape, ShapeError, broadcast, fmt_shape, inputs, last_dim, register,
    tokens_of, with_last,
)
from specc.ops.layers import ACTIVATIONS, LayerNorm, Linear, RMSNorm


# -- linear -------------------------------------------------------------------
class LinearParams(OpParams):
    in_dim: int = Field(gt=0)
    out_dim: int = Field(gt=0)
    bias: bool = True
    activation: Literal["relu", "gelu", "gelu_tanh", "gelu_new", "silu", "tanh", "sigmoid", "identity"] = "identity"
    init_std: float | None = Field(default=None, ge=0)


class LinearOp(Linear):
    def __init__(self, p: LinearParams):
        super().__init__(p.in_dim, p.out_dim, p.bias, p.init_std)
        self.act = ACTIVATIONS[p.activation]
        self.plain = p.activation == "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y if self.plain else self.act(y)


def _linear_shapes(p: LinearParams) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"weight": (p.out_dim, p.in_dim)}
    if p.bias:
        shapes["bias"] = (p.out_dim,)
    return shapes


register(OpRecord(
    name="linear", params=LinearParams, inputs=inputs("x"),
    shape=lambda p, s: with_last(last_dim(s["x"], p.in_dim, "linear", "in_dim"), p.out_dim),
    param_shapes=_linear_shapes, build=LinearOp,
    flops=lambda p, s, t: 2 * p.in_dim * p.out_dim,
    doc="Affine map of the last dimension, optionally followed by an activation.",
))


# -- norms --------------------------------------------------------------------
class LayerNormParams(OpParams):
    dim: int = Field(gt=0)
    eps: float = Field(default=1e-5, gt=0)
    bias: bool = True


class RMSNormParams(OpParams):
    dim: int = Field(gt=0)
    eps: float = Field(default=1e-6, gt=0)


register(OpRecord(
    name="layer_norm", params=LayerNormParams, inputs=inputs("x"),
    shape=lambda p, s: last_dim(s["x"], p.dim, "layer_norm", "dim"),
    param_shapes=lambda p: {"weight": (p.dim,), **({"bias": (p.dim,)} if p.bias else {})},
    build=lambda p: LayerNorm(p.dim, p.eps, p.bias), flops=lambda p, s, t: 8 * p.dim,
    doc="LayerNorm over the last dimension, with or without bias.",
))
register(OpRecord(
    name="rms_norm", params=RMSNormParams, inputs=inputs("x"),
    shape=lambda p, s: last_dim(s["x"], p.dim, "rms_norm", "dim"),
    param_shapes=lambda p: {"weight": (p.dim,)},
    build=lambda p: RMSNorm(p.dim, p.eps), flops=lambda p, s, t: 4 * p.dim,
    doc="RMSNorm (T5, Llama): scale by the root mean square, no centring, no bias.",
))


# -- parameter-free ops ---------------------------------------------------------
class ActivationParams(OpParams):
    fn: Literal["relu", "gelu", "gelu_tanh", "gelu_new", "silu", "tanh", "sigmoid", "identity"]


class Activation(nn.Module):
    def __init__(self, p: ActivationParams):
        super().__init__()
        self.fn = ACTIVATIONS[p.fn]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


register(OpRecord(
    name="activation", params=ActivationParams, inputs=inputs("x"), shape=lambda p, s: s["x"],  # type: ignore[arg-type,return-value]
    param_shapes=lambda p: {}, build=Activation, doc="An elementwise activation function.",
))


class NoParams(OpParams):
    pass


class Add(nn.Module):
    """Residual sum: a + b."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def _add_shape(p: NoParams, s: Mapping[str, Shape | None]) -> Shape:
    a, b = s["a"], s["b"]
    assert a is not None and b is not None
    return broadcast(a, b)


register(OpRecord(
    name="add", params=NoParams, inputs=inputs("a", "b"), shape=_add_shape,
    param_shapes=lambda p: {}, build=lambda p: Add(), doc="Elementwise sum (residual connections).",
))


class DropoutParams(OpParams):
    p: float = Field(ge=0.0, lt=1.0)


class Dropout(nn.Module):
    def __init__(self, p: DropoutParams):
        super().__init__()
        self.p = p.p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Skipping the call entirely at p == 0 keeps CPU SDPA-friendly graphs cheap.
        return F.dropout(x, self.p, self.training) if self.p > 0 and self.training else x


register(OpRecord(
    name="dropout", params=DropoutParams, inputs=inputs("x"), shape=lambda p, s: s["x"],  # type: ignore[arg-type,return-value]
    param_shapes=lambda p: {}, build=Dropout, doc="Dropout (identity in eval mode).",
))


class ScaleParams(OpParams):
    factor: float


class Scale(nn.Module):
    def __init__(self, p: ScaleParams):
        super().__init__()
        self.factor = p.factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


register(OpRecord(
    name="scale", params=ScaleParams, inputs=inputs("x"), shape=lambda p, s: s["x"],  # type: ignore[arg-type,return-value]
    param_shapes=lambda p: {}, build=Scale, doc="Multiply by a constant (e.g. T5's d_model**-0.5 before a tied head).",
))


# -- pooling ------------------------------------------------------------------
class PoolParams(OpParams):
    mode: Literal["first", "mean", "last"] = "first"


class Pool(nn.Module):
    """(B, T, D) → (B, D): the first token, the last non-pad token, or the masked mean."""

    def __init__(self, p: PoolParams):
        super().__init__()
        self.mode = p.mode

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "first":
            return x[:, 0]
        if mask is None:
            return x.mean(dim=1) if self.mode == "mean" else x[:, -1]
        keep = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
        if self.mode == "mean":
            return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        last = mask.long().sum(1).clamp(min=1) - 1  # (B,)
        return x[torch.arange(x.shape[0], device=x.device), last]


def _pool_shape(p: PoolParams, s: Mapping[str, Shape | None]) -> Shape:
    x = s["x"]
    assert x is not None
    if len(x) != 3:
        raise ShapeError(f"pool expects [batch, seq, dim], got {fmt_shape(x)}")
    mask = s.get("mask")
    if mask is not None and tuple(mask) != tokens_of(x):
        raise ShapeError(f"pool mask {fmt_shape(mask)} does not match tokens {fmt_shape(tokens_of(x))}")
    return (x[0], x[2])


register(OpRecord(
    name="pool", params=PoolParams, inputs=inputs("x", "mask?"), shape=_pool_shape,
    param_shapes=lambda p: {}, build=Pool, doc="Sequence pooling: first token, last token or masked mean.",
))


def is_initialisable(module: nn.Module) -> bool:
    return isinstance(module, Initialisable)
