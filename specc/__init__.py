"""specc: a declarative model-spec compiler for Transformer language models.

The pipeline, one stage per module:
``parse`` (text → RawSpec) → ``validate`` (→ ModelSpec) → ``build_graph``
(→ LayerGraph) → ``compile_model`` (→ nn.Module).

Importing `specc` does not import torch: the stages up to the graph are
torch-free, so the commands that only read specs (check, fmt, hash, diff...)
start at once. The compiler's names load torch on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, Sequence

from specc.version import __version__

if TYPE_CHECKING:
    import torch

    from specc.compiler import NodeError, SpecModel, compile_model
    from specc.diagnostics import Diagnostic, Span, SpecError
    from specc.frontend import parse
    from specc.graph import LayerGraph, build_graph
    from specc.schema.validate import ModelSpec, validate
    from specc.runtime.train.loading import LoadedRun, load_run

__all__ = [
    "parse", "validate", "build_graph", "compile_model", "compile_file", "load_spec", "load_graph", "load_run",
    "ModelSpec", "LayerGraph", "SpecModel", "SpecError", "Diagnostic", "Span", "NodeError", "LoadedRun", "__version__",
]

PathLike = str | os.PathLike[str]

# Every stage is imported when one of its names is first asked for (PEP 562): `python -m specc` runs this file,
# and `specc --help` or `specc fmt` should not pay for lark, pydantic, networkx or torch (tests/test_startup.py).
_LAZY = {
    "Diagnostic": "specc.diagnostics", "Span": "specc.diagnostics", "SpecError": "specc.diagnostics",
    "parse": "specc.frontend", "validate": "specc.schema", "ModelSpec": "specc.schema",
    "build_graph": "specc.graph", "LayerGraph": "specc.graph",
    "compile_model": "specc.compiler", "SpecModel": "specc.compiler", "NodeError": "specc.compiler",
    "load_run": "specc.runtime.train.loading", "LoadedRun": "specc.runtime.train.loading",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'specc' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


def load_spec(path: PathLike, sets: Sequence[str] = (), search_paths: Sequence[PathLike] = ()) -> ModelSpec:
    """Parse and validate a spec file."""
    from specc.frontend import parse
    from specc.schema import validate

    return validate(parse(path, sets, search_paths))


def load_graph(path: PathLike, sets: Sequence[str] = (), search_paths: Sequence[PathLike] = ()) -> LayerGraph:
    """Parse, validate and build the layer graph of a spec file."""
    from specc.graph import build_graph

    return build_graph(load_spec(path, sets, search_paths))


def compile_file(path: PathLike, sets: Sequence[str] = (), device: str | torch.device | None = None,
                 search_paths: Sequence[PathLike] = ()) -> SpecModel:
    """The whole pipeline: a spec file to an initialised `nn.Module`."""
    from specc.compiler import compile_model

    return compile_model(load_graph(path, sets, search_paths), device)
