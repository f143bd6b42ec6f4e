"""Position-wise feed-forward: ReLU/GELU/SiLU, or gated (SwiGLU, gated-GELU)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from specc.ops.base import Initialisable, OpParams, OpRecord, inputs, last_dim, register
from specc.ops.layers import ACTIVATIONS, GATED, Linear

Activation = Literal["relu", "gelu", "gelu_tanh", "gelu_new", "silu", "swiglu", "geglu", "geglu_tanh", "geglu_new"]


class FeedForwardParams(OpParams):
    d_model: int = Field(gt=0)
    d_ff: int = Field(gt=0)
    activation: Activation = "gelu"
    bias: bool = True
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)  # after the activation, as T5 places it
    init_std: float | None = Field(default=None, ge=0)
    out_init_std: float | None = Field(default=None, ge=0)

    @property
    def gated(self) -> bool:
        return self.activation in GATED


class FeedForward(Initialisable):
    def __init__(self, p: FeedForwardParams):
        super().__init__()
        self.fc_in = Linear(p.d_model, p.d_ff, p.bias, p.init_std)
        self.fc_gate = Linear(p.d_model, p.d_ff, p.bias, p.init_std) if p.gated else None
        self.fc_out = Linear(p.d_ff, p.d_model, p.bias, p.out_init_std if p.out_init_std is not None else p.init_std)
        self.act = ACTIVATIONS[GATED.get(p.activation, p.activation)]
        self.dropout = p.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc_in(x)  # (B, T, d_ff)
        h = self.act(self.fc_gate(x)) * h if self.fc_gate is not None else self.act(h)
        if self.dropout > 0 and self.training:
            h = F.dropout(h, self.dropout, True)
        return self.fc_out(h)


def _param_shapes(p: FeedForwardParams) -> dict[str, tuple[int, ...]]:
    names = ["fc_in", "fc_gate", "fc_out"] if p.gated else ["fc_in", "fc_out"]
    shapes: dict[str, tuple[int, ...]] = {}
    for name in names:
        shapes[f"{name}.weight"] = (p.d_model, p.d_ff) if name == "fc_out" else (p.d_ff, p.d_model)
        if p.bias:
            shapes[f"{name}.bias"] = (p.d_model,) if name == "fc_out" else (p.d_ff,)
    return shapes


register(OpRecord(
    name="feed_forward", params=FeedForwardParams, inputs=inputs("x"),
    shape=lambda p, s: last_dim(s["x"], p.d_model, "feed_forward", "d_model"),
    param_shapes=_param_shapes, build=FeedForward,
    flops=lambda p, s, t: 2 * p.d_model * p.d_ff * (3 if p.gated else 2),
    doc="Two-layer MLP d_model → d_ff → d_model; gated variants add a gate projection.",
))
