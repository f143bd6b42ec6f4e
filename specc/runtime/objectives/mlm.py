"""Masked language modelling with BERT's recipe, and its batch layout "bert".

Of the ordinary tokens (never specials or padding) `mask_prob` are chosen; of
those 80 % become [MASK], 10 % a random ordinary token, 10 % stay. With
`whole_word`, words are chosen instead of pieces and every piece of a chosen
word is. Only the chosen positions go through the vocabulary projection: the
model's `mlm_select` input marks them, and the labels are the original ids at
those positions in row-major order (the order of `x[select]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from pydantic import Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.graph.queries import attention_nodes
from specc.runtime.data.batches import Packed, layout
from specc.runtime.data.tokens import TokenStore
from specc.runtime.errors import UserError
from specc.runtime.batch import METRIC_PREFIX, Batch, LossSums
from specc.runtime.objectives.base import ObjectiveParams, ObjectiveRecord, member, register
from specc.runtime.data.tokenizer import Specials

if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")

MASK_SHARE, RANDOM_SHARE = 0.8, 0.1  # of the chosen tokens; the rest stay unchanged


class MLMParams(ObjectiveParams):
    mask_prob: float = Field(default=0.15, gt=0.0, lt=1.0, description="share of the ordinary tokens chosen to predict")
    whole_word: bool = Field(default=False, description="choose whole words (all their pieces) rather than pieces")


def choose(tokens: np.ndarray, specials: Specials, rng: np.random.Generator, prob: float, whole_word: bool) -> np.ndarray:
    """Bool (B, T): the positions to predict, each ordinary token (or word) with probability `prob`."""
    special = member(tokens, specials.all())
    if not whole_word:
        return (rng.random(tokens.shape) < prob) & ~special
    # A word starts at every piece that does not continue one, and right after a special token.
    after_special = np.concatenate([np.ones_like(special[:, :1]), special[:, :-1]], axis=1)
    starts = ~member(tokens, specials.continuations) | special | after_special
    word = np.cumsum(starts.ravel()).reshape(tokens.shape) - 1  # word index of every position, row-major
    picked = rng.random(int(word[-1, -1]) + 1) < prob
    return picked[word] & ~special


def corrupt(tokens: np.ndarray, chosen: np.ndarray, specials: Specials, vocab: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of `tokens` with chosen positions replaced: 80 % [MASK], 10 % a random ordinary token, 10 % kept."""
    roll = rng.random(tokens.shape)
    out = tokens.copy()
    out[chosen & (roll < MASK_SHARE)] = specials.mask
    randomised = chosen & (roll >= MASK_SHARE) & (roll < MASK_SHARE + RANDOM_SHARE)
    ordinary = np.setdiff1d(np.arange(vocab), np.fromiter(specials.all(), dtype=np.int64))
    out[randomised] = rng.choice(ordinary, size=int(randomised.sum()))
    return out


def _prepare(p: MLMParams, batch: Batch, rng: np.random.Generator, specials: Specials, vocab: int) -> None:
    tokens = batch.inputs["tokens"].numpy()
    chosen = choose(tokens, specials, rng, p.mask_prob, p.whole_word)
    batch.inputs["tokens"] = torch.from_numpy(corrupt(tokens, chosen, specials, vocab, rng))
    batch.inputs["mlm_select"] = torch.from_numpy(chosen)
    batch.targets["mlm_labels"] = torch.from_numpy(tokens[chosen])  # row-major, as x[select]


def _loss(p: MLMParams, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
    labels = batch.targets["mlm_labels"]  # (N,): the selected positions, row-major
    from specc.runtime.objectives.vocab_ce import vocab_cross_entropy  # torch: imported at the first loss

    return vocab_cross_entropy(outputs, "mlm_logits", labels, sums, "mlm", accuracy=METRIC_PREFIX + "mlm")


def _check(p: MLMParams, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    causal = [name for name, a in attention_nodes(graph) if a.causal and not a.cross]
    if causal:
        return [Diagnostic("E066", f"masked LM needs bidirectional self-attention, but '{causal[0]}' is causal", span,
                           "set causal = false on the encoder's self-attention, or use the causal_lm objective")]
    return []


@layout("bert")
class BertWindows:
    """[CLS] + a window of seq_len - 2 tokens of the packed stream + [SEP], one segment, no padding.

    Windows are visited as `Packed` visits them (a fresh seeded permutation each epoch).
    """

    def __init__(self, store: TokenStore, specials: Specials, seq_len: int, seed: int):
        if seq_len < 3:
            raise UserError(f"[train] seq_len = {seq_len} leaves no room for text between [CLS] and [SEP]")
        self.windows = Packed(store, specials, seq_len - 2, seed)
        self.specials, self.seq_len, self.n = specials, seq_len, self.windows.n

    def batch(self, first: int, size: int) -> Batch:
        w, store = self.windows.seq_len, self.windows.store
        body = np.stack([store.window(self.windows.window_index(k) * w, w) for k in range(first, first + size)])
        tokens = np.empty((size, self.seq_len), dtype=np.int64)  # (B, T)
        tokens[:, 0], tokens[:, 1:-1], tokens[:, -1] = self.specials.cls, body, self.specials.sep
        t = torch.from_numpy(tokens)
        return Batch({"tokens": t, "segments": torch.zeros_like(t)}, {}, size * self.seq_len)


register(ObjectiveRecord(
    name="mlm", params=MLMParams, layout="bert", accepts=frozenset({"pairs"}), inputs=("tokens", "mlm_select"),
    optional_inputs=("segments",), outputs=("mlm_logits",), loss=_loss, prepare=_prepare, check=_check,
    doc="Masked LM (BERT): 15 % of tokens chosen, 80 % [MASK] / 10 % random / 10 % kept; only chosen positions are scored.",
))
