"""Modules of token embeddings and position encodings; their records are in `specc.ops.records.embedding`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from specc.ops.cache import KVCache
from specc.ops.layers import Initialisable, normal_, sinusoid_table
from specc.ops.records.embedding import EmbeddingParams, PositionParams, RelativeBiasParams, SinusoidParams


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


class SinusoidalPositions(nn.Module):
    def __init__(self, p: SinusoidParams):
        super().__init__()
        self.dim = p.dim

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.offset if cache is not None else 0
        return sinusoid_table(ids.shape[1], self.dim, start, ids.device).unsqueeze(0)


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
