"""KV cache for incremental decoding: each new token costs one position.

The generator creates one `KVCache`, passes it to the model on every step and
advances `offset` by the number of tokens it fed. Attention nodes keep their
keys and values here under their qualified node name; position ops read
`offset` so new tokens get the right positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: building a cache needs no torch
    import torch


@dataclass
class KVCache:
    """Keys/values per attention node, plus outputs of nodes that do not depend on the
    `incremental` inputs (an encoder's output during decoding), computed once and reused."""

    incremental: frozenset[str] = frozenset({"tokens", "attention_mask"})
    offset: int = 0
    entries: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    static: dict[str, torch.Tensor] = field(default_factory=dict)

    def advance(self, tokens: int) -> None:
        self.offset += tokens

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows `index` (beam search reorders hypotheses)."""
        self.entries = {k: (a.index_select(0, index), b.index_select(0, index)) for k, (a, b) in self.entries.items()}
        self.static = {k: v.index_select(0, index) if v.shape[0] == len(index) or v.shape[0] > 1 else v
                       for k, v in self.static.items()}
