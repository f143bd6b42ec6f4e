"""The torch side of the layer library: init helpers and the blocks several ops share (linear, norms, activations)."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from specc.ops.records.ffn import GATED


# -- init helpers -------------------------------------------------------------
class Initialisable(nn.Module):
    """A module that fills its own parameters from a std and a generator."""

    def initialize(self, std: float, gen: torch.Generator) -> None:
        for module in self.children():
            if isinstance(module, Initialisable):
                module.initialize(std, gen)


_DONE = "_specc_initialised"


def claim(t: torch.Tensor) -> bool:
    """True the first time a tensor is initialised in a pass; a tied tensor is filled once."""
    if getattr(t, _DONE, False):
        return False
    setattr(t, _DONE, True)
    return True


def release(t: torch.Tensor) -> None:
    if hasattr(t, _DONE):
        delattr(t, _DONE)


def normal_(t: torch.Tensor, std: float, gen: torch.Generator) -> None:
    if claim(t):
        with torch.no_grad():
            t.normal_(0.0, std, generator=gen)


def fill_(t: torch.Tensor, value: float) -> None:
    if claim(t):
        with torch.no_grad():
            t.fill_(value)



class LoRA(nn.Module):
    """A low-rank update of a linear layer: x ↦ dropout(x) A^T B^T · alpha / rank (Hu et al., 2021).

    `a` is (rank, in), `b` is (out, rank); `b` starts at zero, so an adapted model starts out computing
    exactly what its base did. `merged` folds the update into a weight: W + B A · alpha / rank."""

    def __init__(self, d_in: int, d_out: int, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.a = nn.Parameter(torch.empty(rank, d_in))
        self.b = nn.Parameter(torch.empty(d_out, rank))
        self.scale, self.dropout = alpha / rank, dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dropout > 0 and self.training:
            x = F.dropout(x, self.dropout, True)
        return F.linear(F.linear(x, self.a), self.b) * self.scale  # (..., rank) then (..., out)

    def initialize(self, gen: torch.Generator) -> None:
        with torch.no_grad():  # A as nn.Linear's default (kaiming-uniform, a = sqrt(5)), B zero
            bound = 1 / math.sqrt(self.a.shape[1])
            self.a.uniform_(-bound, bound, generator=gen)
            self.b.zero_()

    def merged(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.b.float() @ self.a.float() * self.scale).to(weight.dtype)

    def extra_repr(self) -> str:
        return f"rank={self.a.shape[0]}, scale={self.scale:g}, dropout={self.dropout:g}"


class Linear(Initialisable):
    """y = x W^T + b with W of shape (out, in); init normal(std), zero bias. An adapted layer
    (specc.compiler.adapt) adds its `lora` update."""

    def __init__(self, d_in: int, d_out: int, bias: bool = True, init_std: float | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        self.bias = nn.Parameter(torch.empty(d_out)) if bias else None
        self.init_std = init_std
        self.lora: LoRA | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        return y if self.lora is None else y + self.lora(x)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]} → {self.weight.shape[0]}, bias={self.bias is not None}"

    def initialize(self, std: float, gen: torch.Generator) -> None:
        normal_(self.weight, self.init_std if self.init_std is not None else std, gen)
        if self.bias is not None:
            fill_(self.bias, 0.0)


class LayerNorm(Initialisable):
    no_decay_kind = "norm"  # also when an op uses it inside (the MLM head's norm): see OpRecord.no_decay_kind

    def __init__(self, dim: int, eps: float, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.empty(dim)) if bias else None
        self.shape, self.eps = (dim,), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.shape[0]}, eps={self.eps}, bias={self.bias is not None}"

    def initialize(self, std: float, gen: torch.Generator) -> None:
        fill_(self.weight, 1.0)
        if self.bias is not None:
            fill_(self.bias, 0.0)


class RMSNorm(Initialisable):
    """x / rms(x) * w, computed in fp32 as T5 and Llama do."""

    no_decay_kind = "norm"

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))
        self.eps = eps

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        y = x.float() * torch.rsqrt(variance + self.eps)
        return self.weight * y.to(x.dtype) if x.dtype == self.weight.dtype else (self.weight * y).to(x.dtype)

    def initialize(self, std: float, gen: torch.Generator) -> None:
        fill_(self.weight, 1.0)


class _GeluNew(torch.autograd.Function):
    """GELU's tanh approximation with the rounding of GPT-2 and transformers' `gelu_new` (activation "gelu_new").

    The forward is their formula, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), op for op and so bit
    for bit, but in place on one buffer; the backward is the fused derivative kernel of the same function.
    "gelu_tanh" is the same function through PyTorch's fused kernel, which rounds differently (1e-4 on
    T5 v1.1's unscaled logits) and costs a third as much in the forward (see benchmarks/levers.py): imports
    of published checkpoints keep "gelu_new" so that they match `transformers` bit for bit.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        y = torch.pow(x, 3.0)
        # (x + 0.044715 x^3) is summed in the other order than `gelu_new` writes it: IEEE addition commutes.
        return y.mul_(0.044715).add_(x).mul_(_SQRT_2_OVER_PI).tanh_().add_(1.0).mul_(x).mul_(0.5)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return torch.ops.aten.gelu_backward(grad, x, approximate="tanh")


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    return _GeluNew.apply(x)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_tanh": _gelu_tanh,
    "gelu_new": _gelu_new,
    "silu": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}

__all__ = ["ACTIVATIONS", "GATED", "Initialisable", "LayerNorm", "Linear", "RMSNorm", "fill_", "normal_", "release"]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def sinusoid_table(length: int, dim: int, offset: int = 0, device: torch.device | None = None) -> torch.Tensor:
    """(length, dim) sin/cos table of Vaswani et al.: sin on even, cos on odd features."""
    pos = torch.arange(offset, offset + length, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table
