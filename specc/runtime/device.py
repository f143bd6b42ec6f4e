"""Where a run computes, in which precision, and the perplexity of a loss: small pieces every runtime layer uses."""

from __future__ import annotations

import contextlib
import math

import torch

from specc.runtime.errors import UserError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("[train] device = \"cuda\" but no CUDA device is available")
    return torch.device(name)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on GPU; CPU runs stay fp32 (bf16 matmuls are far slower on CPUs here)."""
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))
