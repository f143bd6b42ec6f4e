"""The modules a `LayerGraph` compiles into.

Each graph scope becomes a flat list of `Step`s run by a tiny interpreter over
a list of slots: no per-call dict lookups of the graph, no shape checks. A
failure inside a node is re-raised as `NodeError` naming the node and its span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from specc.diagnostics import Span
from specc.ops.cache import KVCache


class NodeError(RuntimeError):
    """A runtime failure inside one node of a compiled model."""

    def __init__(self, node: str, span: Span | None, cause: BaseException):
        where = f" ({span})" if span else ""
        super().__init__(f"in node '{node}'{where}: {type(cause).__name__}: {cause}")
        self.node, self.span = node, span


@dataclass(frozen=True)
class Step:
    module: nn.Module
    args: tuple[int, ...]  # slot per input; -1 means "not given" (an optional input)
    out: int
    uses_cache: bool
    name: str
    span: Span | None
    deps: frozenset[str] = frozenset()  # graph inputs this step depends on (top level only)


def run_steps(steps: Sequence[Step], env: list[torch.Tensor | None], cache: KVCache | None) -> None:
    for step in steps:
        args = [env[i] if i >= 0 else None for i in step.args]
        try:
            env[step.out] = step.module(*args, cache=cache) if step.uses_cache else step.module(*args)
        except NodeError:
            raise
        except Exception as err:  # re-raised with the node's name and spec location
            raise NodeError(step.name, step.span, err) from err


def run_cached(steps: Sequence[Step], env: list[torch.Tensor | None], cache: KVCache) -> None:
    """Incremental decoding: steps independent of the incremental inputs run once and are reused."""
    for step in steps:
        if step.deps & cache.incremental:
            run_steps((step,), env, cache)
        elif step.name in cache.static:
            env[step.out] = cache.static[step.name]
        else:
            run_steps((step,), env, None)
            value = env[step.out]
            assert value is not None
            cache.static[step.name] = value


class BlockModule(nn.Module):
    """One instance of a spec block: its op modules as children, run in order."""

    def __init__(self, n_inputs: int, n_slots: int, out: int):
        super().__init__()
        # Underscored so no spec node name (never underscored) can shadow them.
        self._n_inputs, self._n_slots, self._out = n_inputs, n_slots, out
        self._steps: list[Step] = []

    def forward(self, *inputs: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
        env: list[torch.Tensor | None] = list(inputs) + [None] * (self._n_slots - self._n_inputs)
        run_steps(self._steps, env, cache)
        out = env[self._out]
        assert out is not None
        return out


class Repeat(nn.ModuleList):
    """`repeat N` of a block: the first input threads through, the others are shared."""

    def forward(self, first: torch.Tensor, *rest: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
        for layer in self:
            first = layer(first, *rest, cache=cache)
        return first


class SpecModel(nn.Module):
    """A compiled spec. Call with graph inputs by name; returns a dict of named outputs."""

    def __init__(self, input_names: Sequence[str], required: Sequence[str]):
        super().__init__()
        self._input_names = list(input_names)
        self._required = set(required)
        self._steps: list[Step] = []
        self._n_slots = len(self._input_names)
        self._output_slots: dict[str, int] = {}

    @property
    def input_names(self) -> list[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> list[str]:
        return list(self._output_slots)

    def forward(self, *args: torch.Tensor, cache: KVCache | None = None, **kwargs: torch.Tensor | None
                ) -> dict[str, torch.Tensor]:
        env: list[torch.Tensor | None] = [None] * self._n_slots
        for i, value in enumerate(args):
            env[i] = value
        for name, value in kwargs.items():
            if name not in self._input_names:
                raise TypeError(f"unknown model input '{name}'; inputs are {', '.join(self._input_names)}")
            env[self._input_names.index(name)] = value
        for i, name in enumerate(self._input_names):
            if env[i] is None and name in self._required:
                raise TypeError(f"missing required model input '{name}'")
        if cache is None:
            run_steps(self._steps, env, None)
        else:
            run_cached(self._steps, env, cache)
        return {name: env[slot] for name, slot in self._output_slots.items()}  # type: ignore[misc]  # type: ignore[misc]
