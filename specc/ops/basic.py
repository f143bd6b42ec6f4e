"""Modules of the elementwise and per-feature ops: linear, norms, activation, add, dropout, scale, pool.

Their records (parameters, shapes, counts) are in `specc.ops.records.basic`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from specc.ops.layers import ACTIVATIONS, LayerNorm, Linear, RMSNorm
from specc.ops.records.basic import (
    ActivationParams, DropoutParams, LayerNormParams, LinearParams, NoParams, PoolParams, RMSNormParams, ScaleParams,
)


class LinearOp(Linear):
    def __init__(self, p: LinearParams):
        super().__init__(p.in_dim, p.out_dim, p.bias, p.init_std)
        self.act = ACTIVATIONS[p.activation]
        self.plain = p.activation == "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y if self.plain else self.act(y)


def layer_norm(p: LayerNormParams) -> LayerNorm:
    return LayerNorm(p.dim, p.eps, p.bias)


def rms_norm(p: RMSNormParams) -> RMSNorm:
    return RMSNorm(p.dim, p.eps)


class Activation(nn.Module):
    def __init__(self, p: ActivationParams):
        super().__init__()
        self.fn = ACTIVATIONS[p.fn]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Add(nn.Module):
    """Residual sum: a + b."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def add(p: NoParams) -> Add:
    return Add()


class Dropout(nn.Module):
    def __init__(self, p: DropoutParams):
        super().__init__()
        self.p = p.p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Skipping the call entirely at p == 0 keeps CPU SDPA-friendly graphs cheap.
        return F.dropout(x, self.p, self.training) if self.p > 0 and self.training else x


class Scale(nn.Module):
    def __init__(self, p: ScaleParams):
        super().__init__()
        self.factor = p.factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


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
