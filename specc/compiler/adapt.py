"""Adapters on a compiled model: attach LoRA to the layers a graph's `Adapters` names, and fold it back.

`attach` gives each adapted `Linear` its `lora` module (the base weight is
untouched, so a base checkpoint loads into an adapted model as it is);
`merge` folds every update into its weight and removes the adapters, leaving
the plain architecture with fine-tuned weights.
"""

from __future__ import annotations

import torch
from torch import nn

from specc.graph import LayerGraph
from specc.ops.layers import Linear, LoRA

ADAPTER_SEED_OFFSET = 7_777  # adapters draw from their own stream: the base's initial weights stay as without them


def attach(model: nn.Module, graph: LayerGraph) -> None:
    """Give every adapted layer of `graph` its LoRA module (on the device of the model's parameters)."""
    adapters = graph.adapters
    if adapters is None:
        return
    for name, (d_in, d_out) in adapters.layers.items():
        layer = model.get_submodule(name)
        assert isinstance(layer, Linear) and layer.lora is None, f"{name} is not an unadapted linear layer"
        with torch.device(layer.weight.device):
            layer.lora = LoRA(d_in, d_out, adapters.lora.rank, adapters.alpha, adapters.lora.dropout)


def initialize_adapters(model: nn.Module, seed: int) -> None:
    gen: torch.Generator | None = None
    for module in model.modules():
        if isinstance(module, LoRA):
            gen = gen or torch.Generator(device=module.a.device).manual_seed(seed + ADAPTER_SEED_OFFSET)
            module.initialize(gen)


def adapter_names(model: nn.Module) -> list[str]:
    """The qualified names of the model's adapter parameters."""
    return [name for name, _ in model.named_parameters() if ".lora." in f".{name}"]


def merge(model: nn.Module) -> int:
    """Fold every LoRA update into its layer's weight and drop the adapters; returns how many were merged."""
    count = 0
    for module in model.modules():
        if isinstance(module, Linear) and module.lora is not None:
            with torch.no_grad():
                module.weight.copy_(module.lora.merged(module.weight))
            module.lora = None
            count += 1
    return count
