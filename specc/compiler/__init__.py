"""Compiler stage: `compile_model(LayerGraph) -> SpecModel`."""

from specc.compiler.compile import compile_model, initialize
from specc.compiler.modules import DeferredLogits, NodeError, Outputs, SpecModel

__all__ = ["compile_model", "initialize", "DeferredLogits", "NodeError", "Outputs", "SpecModel"]
