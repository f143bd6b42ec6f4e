"""specc: a declarative model-spec compiler for Transformer language models.

The pipeline, one stage per module:
``parse`` (text → RawSpec) → ``validate`` (→ ModelSpec) → ``build_graph``
(→ LayerGraph) → ``compile_model`` (→ nn.Module).
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

from specc.compiler import NodeError, SpecModel, compile_model
from specc.diagnostics import Diagnostic, Span, SpecError
from specc.frontend import parse
from specc.graph import LayerGraph, build_graph
from specc.schema import ModelSpec, validate

__all__ = [
    "parse", "validate", "build_graph", "compile_model", "compile_file", "load_spec", "load_graph",
    "ModelSpec", "LayerGraph", "SpecModel", "SpecError", "Diagnostic", "Span", "NodeError",
]
__version__ = "0.1.0"

PathLike = str | os.PathLike[str]


def load_spec(path: PathLike, sets: Sequence[str] = (), search_paths: Sequence[PathLike] = ()) -> ModelSpec:
    """Parse and validate a spec file."""
    return validate(parse(path, sets, search_paths))


def load_graph(path: PathLike, sets: Sequence[str] = (), search_paths: Sequence[PathLike] = ()) -> LayerGraph:
    """Parse, validate and build the layer graph of a spec file."""
    return build_graph(load_spec(path, sets, search_paths))


def compile_file(path: PathLike, sets: Sequence[str] = (), device: str | torch.device | None = None,
                 search_paths: Sequence[PathLike] = ()) -> SpecModel:
    """The whole pipeline: a spec file to an initialised `nn.Module`."""
    return compile_model(load_graph(path, sets, search_paths), device)
