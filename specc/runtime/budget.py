"""Whether one training micro-batch can fit in memory at all, told by `specc check` before any run starts.

`train.batch_size = 100000` used to pass `check`, then take all memory and be
OOM-killed with no message. A lower bound of what one micro-batch needs is the
outputs of the layer graph's nodes that the backward pass keeps: batch x
sequence x (the sum over nodes of each output's width per token), at two bytes
an element (bf16, the smallest the runtime computes in), plus the parameters,
gradients and AdamW's two moments (4 x 4 bytes a parameter). Attention scores,
temporaries and the allocator's slack come on top, so a refusal is certain,
never a guess: it is made only when the bound exceeds the machine's memory
(or its GPU's, when that is larger).
"""

from __future__ import annotations

import math
import sys

from specc.hostmem import physical_memory
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.runtime.config import TrainConfig


def check_batch_memory(train: TrainConfig, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    """An E083 diagnostic when one micro-batch of `train` cannot fit in the memory training would use."""
    per_token = activation_width(graph)
    activations = train.batch_size * train.seq_len * per_token * 2
    weights = 16 * sum(node.own_params() for node in graph.nodes.values())
    where, memory = _training_memory(train)
    if memory is None or activations + weights <= memory:
        return []
    return [Diagnostic("E083", f"one micro-batch of {train.batch_size:,} x {train.seq_len:,} tokens needs at least "
                               f"{(activations + weights) / 2**30:,.1f} GiB ({per_token:,} activation values a token "
                               f"kept for the backward pass, and the parameters with their gradients and optimizer "
                               f"state), more than the {memory / 2**30:,.1f} GiB of {where}", span,
                       "lower train.batch_size (train.grad_accum keeps the batch per step with smaller micro-batches)")]


def activation_width(graph: LayerGraph) -> int:
    """Values per token of all node outputs that grow with batch and sequence (a lower bound of what a
    backward pass keeps)."""
    total = 0
    for node in graph.nodes.values():
        dims = list(node.shape)
        if "batch" in dims and "seq" in dims:
            total += math.prod(d for d in dims if isinstance(d, int))
    return total


def _training_memory(train: TrainConfig) -> tuple[str, int | None]:
    """The larger of the machine's memory and its GPU's (a refusal must hold wherever the run goes). The GPU is
    asked only where torch is loaded already: `specc check` runs without it."""
    host = physical_memory()
    torch = sys.modules.get("torch")
    if train.device != "cpu" and torch is not None and torch.cuda.is_available():
        gpu = int(torch.cuda.get_device_properties(0).total_memory)
        if host is None or gpu > host:
            return "the GPU's memory", gpu
    return "this machine's memory", host
