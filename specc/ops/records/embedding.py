"""Records of token embeddings and position encodings (learned, sinusoidal, T5 relative buckets)."""

from __future__ import annotations

from typing import Mapping

from pydantic import Field, model_validator
from typing_extensions import Self

from specc.ops.base import Example, OpParams, OpRecord, Shape, ShapeError, fmt_shape, inputs, register

INIT_STD = "std of the normal init of the table (default: the spec's init.std)"


class EmbeddingParams(OpParams):
    vocab: int = Field(gt=0, description="rows of the table: token (or segment) ids run from 0 to vocab - 1")
    dim: int = Field(gt=0, description="size of each row, the output's last dimension")
    scale: float = Field(default=1.0, description="multiplier of the output (Vaswani et al. use sqrt(d_model))")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)


def _ids_shape(s: Mapping[str, Shape | None], what: str) -> Shape:
    ids = s["ids"]
    assert ids is not None
    if len(ids) != 2:
        raise ShapeError(f"{what} expects token ids [batch, seq], got {fmt_shape(ids)}")
    return ids


register(OpRecord(
    name="embedding", capabilities=frozenset({"embedding"}), params=EmbeddingParams, inputs=inputs("ids"),
    shape=lambda p, s: _ids_shape(s, "embedding") + (p.dim,),
    param_shapes=lambda p: {"weight": (p.vocab, p.dim)}, builder="specc.ops.embedding:Embedding",
    doc="Lookup table for token or segment ids: [batch, seq] → [batch, seq, dim].",
    shape_rule="ids [batch, seq] → [batch, seq, dim]",
    example=Example("wte", ("tokens",), {"vocab": "vocab", "dim": "d_model"}),
))


class PositionParams(OpParams):
    max_len: int = Field(gt=0, description="rows of the table: the longest sequence, plus offset")
    dim: int = Field(gt=0, description="size of each row, the output's last dimension")
    offset: int = Field(default=0, ge=0, description="row of the first position: 2 in BART, pad_id + 1 in RoBERTa")
    pad_id: int | None = Field(default=None, ge=0, description="RoBERTa: count only non-pad tokens; pads take "
                               "row offset - 1 (the output is then [batch, seq, dim])")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.offset >= self.max_len:
            raise ValueError(f"position offset {self.offset} leaves no rows of max_len {self.max_len}")
        if self.pad_id is not None and self.offset < 1:
            raise ValueError("pad_id needs offset >= 1: pad tokens take the row before the first position")
        return self


register(OpRecord(
    name="learned_positions", capabilities=frozenset({"positions"}), params=PositionParams, inputs=inputs("ids"),
    shape=lambda p, s: (1 if p.pad_id is None else _ids_shape(s, "learned_positions")[0],
                        _ids_shape(s, "learned_positions")[1], p.dim),
    param_shapes=lambda p: {"weight": (p.max_len, p.dim)}, builder="specc.ops.embedding:LearnedPositions",
    uses_cache=True,
    doc="Learned absolute positions (BERT, GPT-2; offset for BART, pad-aware for RoBERTa): [batch, seq] → [1, seq, dim].",
    shape_rule="ids [batch, seq] → [1, seq, dim] ([batch, seq, dim] with pad_id)",
    example=Example("wpe", ("tokens",), {"max_len": "max_seq", "dim": "d_model"}),
))


class SinusoidParams(OpParams):
    dim: int = Field(gt=0, multiple_of=2, description="size of each position's vector (even)")


register(OpRecord(
    name="sinusoidal_positions", capabilities=frozenset({"positions"}), params=SinusoidParams, inputs=inputs("ids"),
    shape=lambda p, s: (1, _ids_shape(s, "sinusoidal_positions")[1], p.dim),
    param_shapes=lambda p: {}, builder="specc.ops.embedding:SinusoidalPositions", uses_cache=True,
    doc="Fixed sin/cos positions of Vaswani et al. 2017: [batch, seq] → [1, seq, dim].",
    shape_rule="ids [batch, seq] → [1, seq, dim]",
    example=Example("pos", ("tokens",), {"dim": "d_model"}),
))


class RelativeBiasParams(OpParams):
    heads: int = Field(gt=0, description="attention heads the bias is for (one bias per head)")
    buckets: int = Field(default=32, gt=1, description="relative-distance buckets (half per direction if bidirectional)")
    max_distance: int = Field(default=128, gt=1, description="distance beyond which all fall in the last bucket")
    bidirectional: bool = Field(default=True, description="separate buckets for keys before and after the query "
                                "(false in a causal decoder)")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)


register(OpRecord(
    name="t5_relative_bias", capabilities=frozenset({"positions"}), params=RelativeBiasParams, inputs=inputs("ids"),
    shape=lambda p, s: (1, p.heads, _ids_shape(s, "t5_relative_bias")[1], _ids_shape(s, "t5_relative_bias")[1]),
    param_shapes=lambda p: {"weight": (p.buckets, p.heads)}, builder="specc.ops.embedding:RelativeBias",
    uses_cache=True,
    doc="T5 relative position buckets: [batch, seq] → attention bias [1, heads, seq, seq].",
    shape_rule="ids [batch, seq] → [1, heads, seq, seq]",
    example=Example("rel_bias", ("tokens",), {"heads": "heads", "bidirectional": False}),
))
