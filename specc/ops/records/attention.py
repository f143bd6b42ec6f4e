"""Attention's record: its parameters, shape rule, parameter shapes and FLOPs (the module: `specc.ops.attention`)."""

from __future__ import annotations

from typing import Literal, Mapping

from pydantic import Field, model_validator
from typing_extensions import Self

from specc.ops.base import (
    Example, OpParams, OpRecord, ParamError, Shape, ShapeError, divisors, fmt_shape, inputs, register,
)

INIT_STD = "std of the normal init of the weights (default: the spec's init.std)"


class AttentionParams(OpParams):
    d_model: int = Field(gt=0, description="size of the input and output features")
    heads: int = Field(gt=0, description="query heads; must divide d_model unless head_dim is set")
    kv_heads: int | None = Field(default=None, gt=0, description="key/value heads, dividing heads: fewer for "
                                 "grouped-query (GQA), 1 for multi-query (default: heads)")
    head_dim: int | None = Field(default=None, gt=0, description="size of each head (default: d_model / heads)")
    cross: bool = Field(default=False, description="attend to the memory input (an encoder's output) instead of x")
    d_memory: int | None = Field(default=None, gt=0, description="feature size of memory (default: d_model)")
    causal: bool = Field(default=False, description="each position sees only itself and earlier positions")
    bias: bool = Field(default=True, description="biases in the projections")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout on the attention weights")
    scale: float | None = Field(default=None, description="multiplier of the scores "
                                "(default: head_dim ** -0.5; T5 uses 1.0)")
    position: Literal["none", "rotary", "alibi"] = Field(
        default="none", description="positions applied inside attention: rotary (RoPE) or ALiBi")
    rope_base: float = Field(default=10000.0, gt=0, description="rotary frequency base (theta)")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)
    # T5 folds the 1/sqrt(head_dim) its unscaled logits lack into the query's init.
    q_init_std: float | None = Field(default=None, ge=0, description="std of the query projection's init (default: init_std)")
    out_init_std: float | None = Field(default=None, ge=0, description="std of the output projection's init "
                                       "(default: init_std; GPT-2 scales it down with depth)")

    @model_validator(mode="after")
    def _divides(self) -> Self:
        if self.head_dim is None and self.d_model % self.heads:
            counts = divisors(self.d_model)
            raise ParamError(f"d_model {self.d_model} is not divisible by heads {self.heads}", "heads",
                             f"heads must divide d_model {self.d_model}: {counts} (or set head_dim)")
        if self.heads % self.n_kv:
            counts = divisors(self.heads)
            raise ParamError(f"heads {self.heads} is not divisible by kv_heads {self.n_kv}", "kv_heads",
                             f"kv_heads must divide heads {self.heads}: {counts}")
        if self.position == "rotary" and self.hd % 2:
            raise ParamError(f"rotary positions need an even head_dim, got {self.hd}",
                             "head_dim" if self.head_dim is not None else "heads",
                             "rotary turns pairs of features: pick heads (or head_dim) so that head_dim is even")
        return self

    @property
    def n_kv(self) -> int:
        return self.kv_heads or self.heads

    @property
    def hd(self) -> int:
        return self.head_dim or self.d_model // self.heads


def _shape(p: AttentionParams, s: Mapping[str, Shape | None]) -> Shape:
    x, memory, mask, bias = s["x"], s.get("memory"), s.get("mask"), s.get("bias")
    assert x is not None
    if len(x) != 3 or x[2] != p.d_model:
        raise ShapeError(f"attention expects [batch, seq, {p.d_model}], got {fmt_shape(x)}", "d_model")
    keys = x
    if p.cross:
        if memory is None:
            raise ShapeError("cross-attention needs a 'memory' input (an encoder output)")
        d_mem = p.d_memory or p.d_model
        if len(memory) != 3 or memory[2] != d_mem or memory[0] != x[0]:
            raise ShapeError(f"cross-attention memory must be [{x[0]}, src_seq, {d_mem}], got {fmt_shape(memory)}")
        keys = memory
    elif memory is not None:
        raise ShapeError("self-attention takes no 'memory' input; set cross = true for cross-attention")
    if mask is not None and tuple(mask) != (keys[0], keys[1]):
        raise ShapeError(f"attention mask must be [{keys[0]}, {keys[1]}], got {fmt_shape(mask)}")
    if bias is not None and (len(bias) != 4 or bias[1] != p.heads or tuple(bias[2:]) != (x[1], keys[1])):
        raise ShapeError(f"attention bias must be [1, {p.heads}, {x[1]}, {keys[1]}], got {fmt_shape(bias)}")
    return x


def _param_shapes(p: AttentionParams) -> dict[str, tuple[int, ...]]:
    h, kv, hd, d = p.heads, p.n_kv, p.hd, p.d_model
    shapes: dict[str, tuple[int, ...]] = {}
    if p.cross:
        shapes["q.weight"] = (h * hd, d)
        shapes["kv_proj.weight"] = (2 * kv * hd, p.d_memory or d)
    else:
        shapes["qkv.weight"] = ((h + 2 * kv) * hd, d)
    shapes["o.weight"] = (d, h * hd)
    if p.bias:
        if p.cross:
            shapes["q.bias"], shapes["kv_proj.bias"] = (h * hd,), (2 * kv * hd,)
        else:
            shapes["qkv.bias"] = ((h + 2 * kv) * hd,)
        shapes["o.bias"] = (d,)
    return shapes


def _flops(p: AttentionParams, s: Mapping[str, Shape | None], context: int) -> int:
    h, kv, hd, d = p.heads, p.n_kv, p.hd, p.d_model
    proj = 2 * d * (h + 2 * kv) * hd + 2 * h * hd * d
    return proj + 4 * h * hd * context  # scores and weighted values over `context` keys


register(OpRecord(
    name="attention", capabilities=frozenset({"attention"}), params=AttentionParams, inputs=inputs("x", "memory?", "mask?", "bias?"),
    shape=_shape, param_shapes=_param_shapes, builder="specc.ops.attention:Attention", flops=_flops, uses_cache=True,
    doc="Multi-head attention (self/cross, causal, GQA/MQA, rotary/ALiBi, additive bias).",
    shape_rule="x [batch, seq, d_model] (memory [batch, src_seq, d_memory], mask [batch, keys], "
               "bias [1, heads, seq, keys]) → [batch, seq, d_model]",
    example=Example("attn", {"x": "ln_1", "mask": "mask"},
                    {"d_model": "d_model", "heads": "heads", "kv_heads": 2, "causal": True, "position": "rotary"}),
))
