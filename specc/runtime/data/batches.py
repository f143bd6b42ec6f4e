"""Batch layouts: how an objective's batches are cut from a `TokenStore`.

Every sample is a pure function of (seed, split, sample index), so the data
position is just a number: batches are reproducible, resumable mid-epoch, and
split by rank without coordination. Layouts register by name; objectives
name the layout they need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from specc.lazy import lazy_import
from specc.runtime.batch import Batch
from specc.runtime.data.tokens import TokenStore
from specc.runtime.errors import UserError
from specc.runtime.data.tokenizer import Specials


class Layout(Protocol):
    def batch(self, first: int, size: int) -> Batch:
        """Samples `first .. first + size - 1` of the stream, as one batch."""
        ...


LayoutFactory = Callable[[TokenStore, Specials, int, int], Layout]  # store, specials, seq_len, seed
LAYOUTS: dict[str, LayoutFactory] = {}


def layout(name: str) -> Callable[[LayoutFactory], LayoutFactory]:
    def add(factory: LayoutFactory) -> LayoutFactory:
        LAYOUTS[name] = factory
        return factory

    return add


def sample_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


@layout("packed")
class Packed:
    """Causal LM: windows of seq_len + 1 tokens of the packed stream (documents joined by EOS),
    visited in a fresh seeded permutation each epoch."""

    def __init__(self, store: TokenStore, specials: Specials, seq_len: int, seed: int):
        self.store, self.seq_len, self.seed = store, seq_len, seed
        self.n = (len(store) - 1) // seq_len
        if self.n < 1:
            raise UserError(f"the corpus split has {len(store)} tokens, fewer than one sequence of {seq_len + 1}")
        self._perm: tuple[int, np.ndarray] | None = None

    def window_index(self, k: int) -> int:
        epoch, pos = divmod(k, self.n)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n))
        return int(self._perm[1][pos])

    def batch(self, first: int, size: int) -> Batch:
        rows = [self.store.window(self.window_index(k) * self.seq_len, self.seq_len + 1) for k in range(first, first + size)]
        data = torch.from_numpy(np.stack(rows))  # (B, T + 1)
        return Batch({"tokens": data[:, :-1].contiguous()}, {"labels": data[:, 1:].contiguous()}, size * self.seq_len)


if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # imported on first use: `specc check` reads these records without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")
