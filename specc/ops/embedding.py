"""Token embeddings and position encodings (learned, sinusoidal, T5 relative buckets)."""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from typing_extensions import Self

from specc.ops.base import Initialisable, OpParams, OpRecord, Shape, ShapeError, fmt_shape, inputs, normal_, register
from specc.ops.cache import KVCache
from specc.ops.layers import sinusoid_table


class EmbeddingParams(OpParams):
    vocab: int = Field(gt=0)
    dim: int = Field(gt=0)
    scale: float = 1.0  # Vaswani et al. multiply by sqrt(d_model)
    init_std: float | None = Field(default=None, ge=0)


class Embedding(Initialisable):
    def __init__(self, p: EmbeddingParams):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(p.vocab, p.dim))
        self.scale, self.init_std = p.scale, p.init_std

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]} × {self.weight.shape[1]}" + (f", scale={self.scale:g}" if self.scale != 1.0 else "")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = F.embedding(ids, self.weight)  # (B, T, D)
        return x if self.scale == 1.0 else x * self.scale

    def initialize(self, std: float, gen: torch.Generator) -> None:
        normal_(self.weight, self.init_std if self.init_std is not None else std, gen)


def _ids_shape(s: Mapping[str, Shape | None], what: str) -> Shape:
    ids = s["ids"]
    assert ids is not None
    if len(ids) != 2:
        raise ShapeError(f"{what} expects token ids [batch, seq], got {fmt_shape(ids)}")
    return ids


register(OpRecord(
    name="embedding", params=EmbeddingParams, inputs=inputs("ids"),
    shape=lambda p, s: _ids_shape(s, "embedding") + (p.dim,),
    param_shapes=lambda p: {"weight": (p.vocab, p.dim)}, build=Embedding,
    doc="Lookup table for token or segment ids: [batch, seq] → [batch, seq, dim].",
))


class PositionParams(OpParams):
    max_len: int = Field(gt=0)
    dim: int = Field(gt=0)
    offset: int = Field(default=0, ge=0)  # row of the first position: 2 in BART, pad_id + 1 in RoBERTa
    pad_id: int | None = Field(default=None, ge=0)  # RoBERTa: count only non-pad tokens; pads take row offset - 1
    init_std: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.offset >= self.max_len:
            raise ValueError(f"position offset {self.offset} leaves no rows of max_len {self.max_len}")
        if self.pad_id is not None and self.offset < 1:
            raise ValueError("pad_id needs offset >= 1: pad tokens take the row before the first position")
        return self


class LearnedPositions(Initialisable):
    def __init__(self, p: PositionParams):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(p.max_len, p.dim))
        self.init_std, self.offset, self.pad_id = p.init_std, p.offset, p.pad_id

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]} × {self.weight.shape[1]}" + (f", offset={self.offset}" if self.offset else "") + (
            f", pad_id={self.pad_id}" if self.pad_id is not None else "")

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.offset if cache is not None else 0
        end = self.offset + start + ids.shape[1]
        if end > self.weight.shape[0]:
            raise ValueError(f"sequence length {end - self.offset} exceeds max_len {self.weight.shape[0]}"
                             + (f" less the offset {self.offset}" if self.offset else ""))
        if self.pad_id is not None:
            # RoBERTa: the i-th non-pad token sits at offset + i - 1 (counting cached tokens), pads at offset - 1.
            real = ids.ne(self.pad_id).long()  # (B, T)
            rows = (real.cumsum(1) + start) * real + (self.offset - 1)
            return F.embedding(rows, self.weight)  # (B, T, D)
        return self.weight[self.offset + start : end].unsqueeze(0)  # (1, T, D)

    def initialize(self, std: float, gen: torch.Generator) -> None:
        normal_(self.weight, self.init_std if self.init_std is not None else std, gen)


register(OpRecord(
    name="learned_positions", params=PositionParams, inputs=inputs("ids"),
    shape=lambda p, s: (1 if p.pad_id is None else _ids_shape(s, "learned_positions")[0],
                        _ids_shape(s, "learned_positions")[1], p.dim),
    param_shapes=lambda p: {"weight": (p.max_len, p.dim)}, build=LearnedPositions, uses_cache=True,
    doc="Learned absolute positions (BERT, GPT-2; offset for BART, pad-aware for RoBERTa): [batch, seq] → [1, seq, dim].",
))


class SinusoidParams(OpParams):
    dim: int = Field(gt=0, multiple_of=2)


class SinusoidalPositions(nn.Module):
    def __init__(self, p: SinusoidParams):
        super().__init__()
        self.dim = p.dim

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.offset if cache is not None else 0
        return sinusoid_table(ids.shape[1], self.dim, start, ids.device).unsqueeze(0)


register(OpRecord(
    name="sinusoidal_positions", params=SinusoidParams, inputs=inputs("ids"),
    shape=lambda p, s: (1, _ids_shape(s, "sinusoidal_positions")[1], p.dim),
    param_shapes=lambda p: {}, build=SinusoidalPositions, uses_cache=True,
    doc="Fixed sin/cos positions of Vaswani et al. 2017: [batch, seq] → [1, seq, dim].",
))


class RelativeBiasParams(OpParams):
    heads: int = Field(gt=0)
    buckets: int = Field(default=32, gt=1)
    max_distance: int = Field(default=128, gt=1)
    bidirectional: bool = True
    init_std: float | None = Field(default=None, ge=0)


class RelativeBias(Initialisable):
    """T5's bucketed relative position bias, shared by every layer of a stack."""

    def __init__(self, p: RelativeBiasParams):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(p.buckets, p.heads))
        self.p = p

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.offset if cache is not None else 0
        q_len = ids.shape[1]
        k_len = start + q_len
        q_pos = torch.arange(start, k_len, device=ids.device)[:, None]
        k_pos = torch.arange(k_len, device=ids.device)[None, :]
        buckets = self._bucket(k_pos - q_pos)  # (T, S)
        return self.weight[buckets].permute(2, 0, 1).unsqueeze(0)  # (1, H, T, S)

    def _bucket(self, rel: torch.Tensor) -> torch.Tensor:
        n, max_dist = self.p.buckets, self.p.max_distance
        out = torch.zeros_like(rel)
        if self.p.bidirectional:
            n //= 2
            out = out + (rel > 0).long() * n
            rel = rel.abs()
        else:
            rel = -torch.clamp(rel, max=0)
        exact = n // 2
        small = rel < exact
        scaled = exact + (torch.log(rel.float().clamp(min=1) / exact) / math.log(max_dist / exact) * (n - exact)).long()
        scaled = torch.clamp(scaled, max=n - 1)
        return out + torch.where(small, rel, scaled)

    def initialize(self, std: float, gen: torch.Generator) -> None:
        normal_(self.weight, self.p.init_std if self.p.init_std is not None else std, gen)


register(OpRecord(
    name="t5_relative_bias", params=RelativeBiasParams, inputs=inputs("ids"),
    shape=lambda p, s: (1, p.heads, _ids_shape(s, "t5_relative_bias")[1], _ids_shape(s, "t5_relative_bias")[1]),
    param_shapes=lambda p: {"weight": (p.buckets, p.heads)}, build=RelativeBias, uses_cache=True,
    doc="T5 relative position buckets: [batch, seq] → attention bias [1, heads, seq, seq].",
))
