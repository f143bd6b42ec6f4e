"""Next-sentence prediction (BERT), and its batch layout "pairs".

A sample is `[CLS] A [SEP] B [SEP]` padded to seq_len: A is text from a random
place in the corpus, cut at sentence boundaries where the tokenizer has them;
half the time B is the text that follows A in the same document (label 0,
"is next"), half the time text from another document (label 1, "random").
Segment ids are 0 up to the first [SEP] and 1 after it; padding has mask 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.runtime.data.batches import layout, sample_rng
from specc.runtime.data.tokens import TokenStore
from specc.runtime.errors import UserError
from specc.runtime.batch import METRIC_PREFIX, Batch, LossSums
from specc.runtime.objectives.base import ObjectiveParams, ObjectiveRecord, cross_entropy_sum, register
from specc.runtime.data.tokenizer import Specials

if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")

IS_NEXT, RANDOM = 0, 1
TRIES = 20  # attempts to find a usable place before settling for what was found


def _loss(p: ObjectiveParams, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
    logits, labels = outputs["nsp_logits"], batch.targets["nsp_labels"]  # (B, 2), (B,)
    sums.add(METRIC_PREFIX + "nsp", float((logits.detach().argmax(-1) == labels).sum()), labels.numel())
    return cross_entropy_sum(logits, labels, sums, "nsp")


def _check(p: ObjectiveParams, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    node = graph.outputs.get("nsp_logits")
    shape = graph.shape_of(node) if node is not None else None
    if shape and isinstance(shape[-1], int) and shape[-1] != 2:
        return [Diagnostic("E068", f"next-sentence prediction needs 2 classes, but 'nsp_logits' is {list(shape)}", span,
                           "give the NSP head out_dim = 2")]
    return []


@layout("pairs")
class Pairs:
    """`[CLS] A [SEP] B [SEP]` samples; sample k is a pure function of (seed, k)."""

    def __init__(self, store: TokenStore, specials: Specials, seq_len: int, seed: int):
        self.store, self.specials, self.seq_len, self.seed = store, specials, seq_len, seed
        self.ends = np.fromiter(specials.sentence_ends, dtype=np.int64, count=len(specials.sentence_ends))
        self.budget = seq_len - 3  # tokens of A and B together
        if self.budget < 2:
            raise UserError(f"[train] seq_len = {seq_len} is too short for [CLS] A [SEP] B [SEP]")
        if store.n_docs < 2:
            raise UserError("next-sentence prediction needs at least two documents in each split of the corpus")

    def batch(self, first: int, size: int) -> Batch:
        s = self.specials
        tokens = np.full((size, self.seq_len), s.pad, dtype=np.int64)  # (B, T)
        segments = np.zeros_like(tokens)
        mask = np.zeros_like(tokens)
        labels = np.empty(size, dtype=np.int64)
        for row, k in enumerate(range(first, first + size)):
            a, b, labels[row] = self.sample(k)
            pair = np.concatenate([[s.cls], a, [s.sep], b, [s.sep]])
            tokens[row, : len(pair)] = pair
            segments[row, len(a) + 2 : len(pair)] = 1
            mask[row, : len(pair)] = 1
        inputs = {"tokens": torch.from_numpy(tokens), "segments": torch.from_numpy(segments),
                  "attention_mask": torch.from_numpy(mask)}
        return Batch(inputs, {"nsp_labels": torch.from_numpy(labels)}, int(mask.sum()))

    def sample(self, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Segments A and B (token ids, without specials) and the label of sample k."""
        rng = sample_rng(self.seed, k)
        label = IS_NEXT if rng.random() < 0.5 else RANDOM
        for _ in range(TRIES):  # a place with at least two tokens, so that A and B are both non-empty
            doc, pos = self._place(rng)
            text = self._text(doc, pos, self.budget)
            if len(text) >= 2:
                break
        cut = self._cut(text, rng)
        a = text[:cut]
        if label == IS_NEXT:
            return a, text[cut:], label
        for _ in range(TRIES):
            other, pos = self._place(rng)
            b = self._text(other, pos, self.budget - len(a))
            if other != doc and len(b):
                break
        return a, b, label

    def _place(self, rng: np.random.Generator) -> tuple[int, int]:
        """A random token position (uniform over the stream, so long documents count more) and its document."""
        pos = int(rng.integers(len(self.store)))
        doc = int(np.searchsorted(self.store.offsets, pos, side="right")) - 1
        return doc, min(pos, int(self.store.offsets[doc + 1]) - 2)  # not the separator

    def _text(self, doc: int, pos: int, length: int) -> np.ndarray:
        """Up to `length` tokens of `doc` from the start of the sentence holding `pos` (looking back at most
        `budget` tokens; the document's start is a sentence start)."""
        lo, hi = int(self.store.offsets[doc]), int(self.store.offsets[doc + 1]) - 1  # hi: the separator
        if pos < lo:  # an empty document
            return np.zeros(0, dtype=np.int64)
        back = max(lo, pos - self.budget)
        ends = np.flatnonzero(np.isin(self.store.window(back, pos - back), self.ends))
        start = back + int(ends[-1]) + 1 if len(ends) else (lo if back == lo else pos)
        return self.store.window(start, max(0, min(hi, start + length) - start))

    def _cut(self, text: np.ndarray, rng: np.random.Generator) -> int:
        """Where A ends: after a random sentence end inside the text, else at a random token."""
        ends = np.flatnonzero(np.isin(text[:-1], self.ends)) + 1
        return int(rng.choice(ends)) if len(ends) else int(rng.integers(1, max(len(text), 2)))


register(ObjectiveRecord(
    name="nsp", params=ObjectiveParams, layout="pairs", accepts=frozenset(), inputs=("tokens", "segments", "attention_mask"),
    outputs=("nsp_logits",), loss=_loss, check=_check,
    doc="Next-sentence prediction (BERT): is segment B the continuation of A (0) or from another document (1)?",
))
