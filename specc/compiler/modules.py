"""The modules a `LayerGraph` compiles into.

Each graph scope becomes a flat list of `Step`s run by a tiny interpreter over
a list of slots: no per-call dict lookups of the graph, no shape checks. A
failure inside a node is re-raised as `NodeError` naming the node and its span.

A model output made by a vocabulary head that nothing else reads (an LM or
MLM head) is deferred: the model returns `Outputs`, which runs that head on
first access, or hands a loss the head's features and projection weight
(`Outputs.deferred`) so that the loss can work through the vocabulary in
chunks and full-vocabulary logits never exist at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint, set_checkpoint_early_stop

from specc.diagnostics import Span
from specc.ops.cache import KVCache
from specc.ops.heads import VocabProjection


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


def _call(step: Step, fn: Callable[..., torch.Tensor], args: Sequence[torch.Tensor | None]) -> torch.Tensor:
    try:
        return fn(*args)
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
        self._recompute = False  # activation checkpointing: see `recompute_activations`

    def forward(self, *inputs: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
        if self._recompute and cache is None and self.training and torch.is_grad_enabled():
            # Only the block's inputs stay alive for backward, which runs the block again to get the rest;
            # the RNG state is replayed, so dropout draws the same masks both times. Early stop ends the
            # recomputation by raising through the nodes, which would wrap it in a NodeError: it stays off.
            with set_checkpoint_early_stop(False):
                out: torch.Tensor = checkpoint(self._run, *inputs, use_reentrant=False)
            return out
        return self._run(*inputs, cache=cache)

    def _run(self, *inputs: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
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


def repeated_layers(model: nn.Module) -> list[nn.Module]:
    """Every layer of every repeated block in `model` (a wrapped model too): the units FSDP shards."""
    return [layer for module in model.modules() if isinstance(module, Repeat) for layer in module]


def recompute_activations(model: nn.Module, blocks: Sequence[str]) -> None:
    """Activation checkpointing on the named block nodes of `model` (each layer of a repeated block on its
    own): in training their intermediate activations are dropped after the forward and recomputed in the
    backward, trading about one more forward of those blocks for their activation memory."""
    for name in blocks:
        module = getattr(model, name, None)
        if module is None:  # a model compiled for one task head that does not read this block
            continue
        for block in module if isinstance(module, Repeat) else [module]:
            block._recompute = True


@dataclass(frozen=True)
class DeferredLogits:
    """A vocabulary head's output, not yet computed: `F.linear(features, weight, bias)`."""

    features: torch.Tensor  # (..., d): the rows the head scores (only the selected ones under `select`)
    weight: torch.Tensor  # (vocab, d)
    bias: torch.Tensor | None  # (vocab,)

    def logits(self) -> torch.Tensor:
        return F.linear(self.features, self.weight, self.bias)  # (..., vocab)


class Outputs(Mapping[str, torch.Tensor]):
    """A compiled model's named outputs; deferred vocabulary heads run on first access."""

    def __init__(self, slots: Mapping[str, int], env: Sequence[torch.Tensor | None],
                 pending: Mapping[int, tuple[Step, list[torch.Tensor | None]]]):
        self._slots = slots
        self._values: dict[int, torch.Tensor] = {s: env[s] for s in slots.values() if s not in pending}  # type: ignore[misc]
        self._pending = dict(pending)  # slot → (head step, its arguments)
        self._heads: dict[int, DeferredLogits] = {}

    def __getitem__(self, name: str) -> torch.Tensor:
        slot = self._slots[name]
        if slot not in self._values:
            step, args = self._pending.pop(slot)
            head = self._heads.pop(slot, None)
            self._values[slot] = head.logits() if head is not None else _call(step, step.module, args)
        return self._values[slot]

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def deferred(self, name: str) -> DeferredLogits | None:
        """Output `name` as features + projection, if it is a vocabulary head's output not yet computed."""
        slot = self._slots[name]
        if slot not in self._pending:
            return None
        if slot not in self._heads:
            step, args = self._pending[slot]
            head: Any = step.module
            self._heads[slot] = DeferredLogits(_call(step, head.features, args), *head.projection())
        return self._heads[slot]


class SpecModel(nn.Module):
    """A compiled spec. Call with graph inputs by name; returns a mapping of named outputs (`Outputs`
    when a vocabulary head is deferred, else a dict)."""

    def __init__(self, input_names: Sequence[str], required: Sequence[str]):
        super().__init__()
        self._input_names = list(input_names)
        self._required = set(required)
        self._steps: list[Step] = []
        self._n_slots = len(self._input_names)
        self._output_slots: dict[str, int] = {}
        self._eager: list[Step] = []  # every step but the deferred heads
        self._deferred: list[Step] = []

    def _defer_heads(self) -> None:
        """Set aside the vocabulary heads whose output is a model output and no other step's input."""
        read = {i for step in self._steps for i in step.args}
        outputs = set(self._output_slots.values())
        self._deferred = [s for s in self._steps if isinstance(s.module, VocabProjection) and not s.uses_cache
                          and s.out in outputs and s.out not in read]
        self._eager = [s for s in self._steps if all(s is not d for d in self._deferred)]

    @property
    def input_names(self) -> list[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> list[str]:
        return list(self._output_slots)

    def forward(self, *args: torch.Tensor, cache: KVCache | None = None, **kwargs: torch.Tensor | None
                ) -> Mapping[str, torch.Tensor]:
        env: list[torch.Tensor | None] = [None] * self._n_slots
        for i, value in enumerate(args):
            env[i] = value
        for name, given in kwargs.items():
            if name not in self._input_names:
                raise TypeError(f"unknown model input '{name}'; inputs are {', '.join(self._input_names)}")
            env[self._input_names.index(name)] = given
        for i, name in enumerate(self._input_names):
            if env[i] is None and name in self._required:
                raise TypeError(f"missing required model input '{name}'")
        if cache is not None:
            run_cached(self._steps, env, cache)
        elif self._deferred and not torch.compiler.is_compiling():
            run_steps(self._eager, env, None)
            pending = {s.out: (s, [env[i] if i >= 0 else None for i in s.args]) for s in self._deferred}
            return Outputs(self._output_slots, env, pending)
        else:
            run_steps(self._steps, env, None)
        return {name: env[slot] for name, slot in self._output_slots.items()}  # type: ignore[misc]
