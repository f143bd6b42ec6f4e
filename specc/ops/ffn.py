"""The feed-forward module; its record is in `specc.ops.records.ffn`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specc.ops.layers import ACTIVATIONS, GATED, Initialisable, Linear
from specc.ops.records.ffn import FeedForwardParams


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
