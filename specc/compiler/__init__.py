"""Compiler stage: `compile_model(LayerGraph) -> SpecModel`."""

from specc.compiler.compile import compile_model, initialize
from specc.compiler.modules import DeferredLogits, NodeError, Outputs, SpecModel, recompute_activations, repeated_layers

__all__ = ["compile_model", "initialize", "recompute_activations", "repeated_layers", "DeferredLogits", "NodeError", "Outputs", "SpecModel"]
