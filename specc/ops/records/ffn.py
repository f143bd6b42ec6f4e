"""Position-wise feed-forward: ReLU/GELU/SiLU, or gated (SwiGLU, gated-GELU)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from specc.ops.base import Example, OpParams, OpRecord, inputs, last_dim, register

Activation = Literal["relu", "gelu", "gelu_tanh", "gelu_new", "silu", "swiglu", "geglu", "geglu_tanh", "geglu_new"]

# Gated variants: act(x W_gate) * (x W_in), as in SwiGLU and T5 v1.1's gated-GELU.
GATED = {"swiglu": "silu", "geglu": "gelu", "geglu_tanh": "gelu_tanh", "geglu_new": "gelu_new"}


class FeedForwardParams(OpParams):
    d_model: int = Field(gt=0, description="size of the input and output features")
    d_ff: int = Field(gt=0, description="size of the hidden layer")
    activation: Activation = Field(
        default="gelu", description="hidden activation; swiglu/geglu* add a gate projection (act(x W_gate) * x W_in)")
    bias: bool = Field(default=True, description="biases in the projections")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout after the activation (where T5 has it)")
    init_std: float | None = Field(default=None, ge=0, description="std of the normal init of the weights "
                                   "(default: the spec's init.std)")
    out_init_std: float | None = Field(default=None, ge=0, description="std of the output projection's init "
                                       "(default: init_std; GPT-2 scales it down with depth)")

    @property
    def gated(self) -> bool:
        return self.activation in GATED


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
    param_shapes=_param_shapes, builder="specc.ops.ffn:FeedForward",
    flops=lambda p, s, t: 2 * p.d_model * p.d_ff * (3 if p.gated else 2),
    doc="Two-layer MLP d_model → d_ff → d_model; gated variants add a gate projection.",
    shape_rule="[..., d_model] → [..., d_model]",
    example=Example("mlp", ("ln_2",), {"d_model": "d_model", "d_ff": "d_ff", "activation": "swiglu", "bias": False}),
))
