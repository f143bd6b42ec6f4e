"""Elementwise and per-feature ops: linear, norms, activation, add, dropout, scale, pool."""

from __future__ import annotations

from typing import Literal, Mapping

from pydantic import Field

from specc.ops.base import (
    Example, OpParams, OpRecord, Shape, ShapeError, broadcast, fmt_shape, inputs, last_dim, register, tokens_of,
    with_last,
)

ActivationName = Literal["relu", "gelu", "gelu_tanh", "gelu_new", "silu", "tanh", "sigmoid", "identity"]
INIT_STD = "std of the normal init of the weights (default: the spec's init.std)"


# -- linear -------------------------------------------------------------------
class LinearParams(OpParams):
    in_dim: int = Field(gt=0, description="size of the input's last dimension")
    out_dim: int = Field(gt=0, description="size of the output's last dimension")
    bias: bool = Field(default=True, description="add a learned bias")
    activation: ActivationName = Field(default="identity", description="applied after the affine map")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)


def _linear_shapes(p: LinearParams) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"weight": (p.out_dim, p.in_dim)}
    if p.bias:
        shapes["bias"] = (p.out_dim,)
    return shapes


register(OpRecord(
    name="linear", params=LinearParams, inputs=inputs("x"),
    shape=lambda p, s: with_last(last_dim(s["x"], p.in_dim, "linear", "in_dim"), p.out_dim),
    param_shapes=_linear_shapes, builder="specc.ops.basic:LinearOp",
    flops=lambda p, s, t: 2 * p.in_dim * p.out_dim,
    doc="Affine map of the last dimension, optionally followed by an activation.",
    shape_rule="[..., in_dim] → [..., out_dim]",
    example=Example("proj", ("h",), {"in_dim": "d_model", "out_dim": "d_model", "activation": "tanh"}),
))


# -- norms --------------------------------------------------------------------
class LayerNormParams(OpParams):
    dim: int = Field(gt=0, description="size of the last dimension, which is normalised")
    eps: float = Field(default=1e-5, gt=0, description="added to the variance before the square root")
    bias: bool = Field(default=True, description="add a learned bias after the scale")


class RMSNormParams(OpParams):
    dim: int = Field(gt=0, description="size of the last dimension, which is normalised")
    eps: float = Field(default=1e-6, gt=0, description="added to the mean square before the square root")


register(OpRecord(
    name="layer_norm", capabilities=frozenset({"norm"}), params=LayerNormParams, inputs=inputs("x"),
    shape=lambda p, s: last_dim(s["x"], p.dim, "layer_norm", "dim"),
    param_shapes=lambda p: {"weight": (p.dim,), **({"bias": (p.dim,)} if p.bias else {})},
    builder="specc.ops.basic:layer_norm", flops=lambda p, s, t: 8 * p.dim,
    doc="LayerNorm over the last dimension, with or without bias.",
    shape_rule="[..., dim] → [..., dim]",
    example=Example("ln_1", ("x",), {"dim": "d_model", "eps": 1e-5}),
))
register(OpRecord(
    name="rms_norm", capabilities=frozenset({"norm"}), params=RMSNormParams, inputs=inputs("x"),
    shape=lambda p, s: last_dim(s["x"], p.dim, "rms_norm", "dim"),
    param_shapes=lambda p: {"weight": (p.dim,)},
    builder="specc.ops.basic:rms_norm", flops=lambda p, s, t: 4 * p.dim,
    doc="RMSNorm (T5, Llama): scale by the root mean square, no centring, no bias.",
    shape_rule="[..., dim] → [..., dim]",
    example=Example("norm_1", ("x",), {"dim": "d_model"}),
))


# -- parameter-free ops ---------------------------------------------------------
class ActivationParams(OpParams):
    fn: ActivationName = Field(description="the function")


register(OpRecord(
    name="activation", params=ActivationParams, inputs=inputs("x"), shape=lambda p, s: s["x"],  # type: ignore[arg-type,return-value]
    param_shapes=lambda p: {}, builder="specc.ops.basic:Activation", doc="An elementwise activation function.",
    shape_rule="same as x", example=Example("act", ("h",), {"fn": "gelu"}),
))


class NoParams(OpParams):
    pass


def _add_shape(p: NoParams, s: Mapping[str, Shape | None]) -> Shape:
    a, b = s["a"], s["b"]
    assert a is not None and b is not None
    return broadcast(a, b)


register(OpRecord(
    name="add", params=NoParams, inputs=inputs("a", "b"), shape=_add_shape,
    param_shapes=lambda p: {}, builder="specc.ops.basic:add", doc="Elementwise sum (residual connections).",
    shape_rule="a and b broadcast (equal dims, or 1)", example=Example("res_1", ("x", "attn"), {}),
))


class DropoutParams(OpParams):
    p: float = Field(ge=0.0, lt=1.0, description="probability of zeroing an element while training")


register(OpRecord(
    name="dropout", params=DropoutParams, inputs=inputs("x"), shape=lambda p, s: s["x"],  # type: ignore[arg-type,return-value]
    param_shapes=lambda p: {}, builder="specc.ops.basic:Dropout", doc="Dropout (identity in eval mode).",
    shape_rule="same as x", example=Example("drop", ("embed",), {"p": "dropout"}),
))


class ScaleParams(OpParams):
    factor: float = Field(description="the constant to multiply by")


register(OpRecord(
    name="scale", params=ScaleParams, inputs=inputs("x"), shape=lambda p, s: s["x"],  # type: ignore[arg-type,return-value]
    param_shapes=lambda p: {}, builder="specc.ops.basic:Scale",
    doc="Multiply by a constant (e.g. T5's d_model**-0.5 before a tied head).",
    shape_rule="same as x", example=Example("scaled", ("h",), {"factor": "d_model ** -0.5"}),
))


# -- pooling ------------------------------------------------------------------
class PoolParams(OpParams):
    mode: Literal["first", "mean", "last"] = Field(
        default="first", description="first token (BERT's [CLS]), mean of the unmasked tokens, or last unmasked token")


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
    param_shapes=lambda p: {}, builder="specc.ops.basic:Pool",
    doc="Sequence pooling: first token, last token or masked mean.",
    shape_rule="[batch, seq, dim] (mask [batch, seq]) → [batch, dim]",
    example=Example("pooled", {"x": "h", "mask": "attention_mask"}, {"mode": "mean"}),
))
