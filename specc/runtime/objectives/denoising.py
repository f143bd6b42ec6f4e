"""BART denoising for encoder-decoders, and its batch layout "denoising".

The encoder reads a corrupted window: its sentences in a random order
(`permute_sentences`), then text infilling: spans with Poisson(`poisson_lambda`)
lengths covering `mask_ratio` of the tokens each become one mask token (a
0-length span inserts one). The decoder writes the original window, starting
from EOS as BART does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from specc.lazy import lazy_import
from specc.runtime.data.batches import layout
from specc.runtime.data.tokens import TokenStore
from specc.runtime.batch import Batch
from specc.runtime.objectives.base import ObjectiveParams, member, register
from specc.runtime.objectives.span_corruption import Seq2SeqWindows, pad_rows, seq2seq_objective
from specc.runtime.data.tokenizer import Specials

if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")


class DenoisingParams(ObjectiveParams):
    mask_ratio: float = Field(default=0.3, ge=0.0, lt=1.0, description="share of the tokens masked, in spans")
    poisson_lambda: float = Field(default=3.0, gt=0.0, description="mean span length (Poisson); each span becomes one mask")
    permute_sentences: bool = Field(default=True, description="shuffle the sentences of the source")


def permute_sentences(text: np.ndarray, ends: frozenset[int], rng: np.random.Generator) -> np.ndarray:
    """The sentences of `text` (each ending after a token in `ends`, the last maybe unfinished) in random order."""
    cuts = np.flatnonzero(member(text[:-1], ends)) + 1
    pieces = np.split(text, cuts)
    return np.concatenate([pieces[i] for i in rng.permutation(len(pieces))])


def span_lengths(budget: int, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson(lam) span lengths summing to exactly `budget` (the last one trimmed); zeros are insertions."""
    lengths = rng.poisson(lam, size=budget)
    while lengths.sum() < budget:
        lengths = np.concatenate([lengths, rng.poisson(lam, size=budget)])
    cum = np.cumsum(lengths)
    last = int(np.searchsorted(cum, budget))  # the first span that reaches the budget
    lengths = lengths[: last + 1].copy()
    lengths[last] = budget - (cum[last - 1] if last else 0)
    return lengths


def infill(text: np.ndarray, ratio: float, lam: float, mask: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Text infilling: (corrupted text, tokens masked). Spans are laid among the kept tokens uniformly at random."""
    n = len(text)
    budget = int(round(n * ratio))
    if budget == 0:
        return text.copy(), 0
    lengths = span_lengths(budget, lam, rng)
    slots = n - budget + len(lengths)  # every kept token and every span is one slot of the output
    is_span = np.zeros(slots, dtype=bool)
    is_span[rng.choice(slots, size=len(lengths), replace=False)] = True
    consumed = np.ones(slots, dtype=np.int64)
    consumed[is_span] = lengths
    starts = np.cumsum(consumed) - consumed  # the first original token each slot covers
    return np.where(is_span, mask, text[np.minimum(starts, n - 1)]), budget


@layout("denoising")
class DenoisingWindows(Seq2SeqWindows):
    """BART: the decoder starts from EOS (the record's `decoder_start`, which generation uses too)."""

    def __init__(self, store: TokenStore, specials: Specials, seq_len: int, seed: int):
        super().__init__(store, specials, seq_len, seed, specials.eos)


def _prepare(p: DenoisingParams, batch: Batch, rng: np.random.Generator, specials: Specials, vocab: int) -> None:
    text = batch.targets["labels"][:, :-1].numpy()  # the windows; labels (the original + EOS) stay as they are
    boundaries = specials.sentence_ends | {specials.eos}
    rows = []
    for row in text:
        if p.permute_sentences:
            row = permute_sentences(row, boundaries, rng)
        rows.append(np.append(infill(row, p.mask_ratio, p.poisson_lambda, specials.mask, rng)[0], specials.eos))
    src, src_mask = pad_rows(rows, specials.pad)
    batch.inputs["src"], batch.inputs["src_mask"] = torch.from_numpy(src), torch.from_numpy(src_mask)
    batch.tokens = int(src_mask.sum() + batch.inputs["tgt_mask"].sum())


register(seq2seq_objective(
    "denoising", DenoisingParams, _prepare, loss_name="denoise", what="denoising", decoder_start="eos",
    doc="BART denoising: sentence permutation, then Poisson(3) spans over 30 % of tokens become one mask each.",
))
