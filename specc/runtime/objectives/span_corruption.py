"""T5 span corruption for encoder-decoders, and its batch layout "span_corruption".

A window of text loses `noise_density` of its tokens in spans of mean length
`mean_span_length` (T5's `random_spans_noise_mask`). The encoder reads the kept
tokens with each span replaced by one sentinel, `<extra_id_0>`, `<extra_id_1>`,
..., then EOS; the decoder writes each sentinel followed by the span it stands
for, then EOS. Interleaving the two by sentinels gives the text back.

The layout is shared with BART denoising (`Seq2SeqWindows`): windows of the
packed stream as identity seq2seq samples, which the objective then corrupts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Mapping, Sequence

from pydantic import Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.runtime.data.batches import Packed, layout
from specc.runtime.data.tokens import TokenStore
from specc.runtime.errors import UserError
from specc.runtime.batch import Batch, LossSums
from specc.runtime.objectives.base import ObjectiveParams, ObjectiveRecord, Prepare, needs_encoder_decoder, register
from specc.runtime.data.tokenizer import Specials

if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")


class SpanParams(ObjectiveParams):
    noise_density: float = Field(default=0.15, gt=0.0, lt=1.0, description="share of the tokens dropped into spans")
    mean_span_length: float = Field(default=3.0, ge=1.0, description="mean tokens per dropped span")


def span_counts(length: int, density: float, mean_span: float) -> tuple[int, int]:
    """(noise tokens, noise spans) of a text of `length` tokens, as T5 rounds them."""
    length = max(length, 2)
    noise = min(max(int(round(length * density)), 1), length - 1)
    spans = max(int(round(noise / mean_span)), 1)
    return noise, min(spans, noise, length - noise)


def noise_mask(length: int, density: float, mean_span: float, rng: np.random.Generator) -> np.ndarray:
    """T5's `random_spans_noise_mask`: bool (length,), True on noise, in spans; the text starts with kept tokens."""
    noise, spans = span_counts(length, density, mean_span)
    full = max(length, 2)

    def segment(items: int) -> np.ndarray:  # a random partition of `items` into `spans` non-empty segments
        first = np.concatenate([[False], rng.permutation(items - 1) < spans - 1])
        return np.bincount(np.cumsum(first), minlength=spans)

    lengths = np.stack([segment(full - noise), segment(noise)], axis=1).reshape(-1)  # kept, noise, kept, noise, ...
    starts = np.zeros(full, dtype=np.int64)
    starts[np.cumsum(lengths)[:-1]] = 1
    return (np.cumsum(starts) % 2 == 1)[:length]


def sentinel_spans(tokens: np.ndarray, drop: np.ndarray, sentinels: Sequence[int]) -> np.ndarray:
    """T5's `noise_span_to_unique_sentinel`: each run of `drop` positions becomes one sentinel, in order."""
    prev = np.concatenate([[False], drop[:-1]])
    first = drop & ~prev
    out = tokens.copy()
    out[first] = np.asarray(sentinels, dtype=np.int64)[np.cumsum(first)[first] - 1]
    return out[~(drop & prev)]


def corrupt(text: np.ndarray, p: SpanParams, sentinels: Sequence[int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(encoder input, decoder target) of one text, both without EOS."""
    spans = span_counts(len(text), p.noise_density, p.mean_span_length)[1]
    if spans > len(sentinels):
        raise UserError(f"span corruption cuts {spans} spans per sample but the tokenizer has {len(sentinels)} sentinels; "
                        "raise [tokenizer] sentinels or lower [train] seq_len")
    noise = noise_mask(len(text), p.noise_density, p.mean_span_length, rng)
    return sentinel_spans(text, noise, sentinels), sentinel_spans(text, ~noise, sentinels)


def pad_rows(rows: Sequence[np.ndarray], fill: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, longest row) int64 with the rows left-aligned and the rest `fill`, and its mask (1 on row tokens)."""
    sizes = np.array([len(r) for r in rows])
    mask = (np.arange(sizes.max())[None, :] < sizes[:, None]).astype(np.int64)
    out = np.full(mask.shape, fill, dtype=np.int64)
    out[mask.astype(bool)] = np.concatenate(rows)
    return out, mask


def shift_right(labels: np.ndarray, start: int, pad: int) -> np.ndarray:
    """Decoder inputs (teacher forcing): `start`, then the labels but the last; ignored labels become `pad`."""
    tgt = np.concatenate([np.full((len(labels), 1), start, dtype=np.int64), labels[:, :-1]], axis=1)
    return np.where(tgt == -100, pad, tgt)


def seq2seq_batch(src_rows: Sequence[np.ndarray], labels: np.ndarray, start: int, pad: int) -> Batch:
    """A batch of encoder inputs (padded with `pad`) and labels (padded with -100) with masks and decoder inputs."""
    src, src_mask = pad_rows(src_rows, pad)
    tgt_mask = (labels != -100).astype(np.int64)
    inputs = {"src": src, "src_mask": src_mask, "tgt": shift_right(labels, start, pad), "tgt_mask": tgt_mask}
    return Batch({k: torch.from_numpy(v) for k, v in inputs.items()}, {"labels": torch.from_numpy(labels)},
                 int(src_mask.sum() + tgt_mask.sum()))


class Seq2SeqWindows:
    """Windows of seq_len - 1 tokens of the packed stream (visited as `Packed` visits them) as identity samples:
    src = labels = window + EOS, tgt = labels shifted right after `start`. The objective corrupts them."""

    def __init__(self, store: TokenStore, specials: Specials, seq_len: int, seed: int, start: int):
        self.windows = Packed(store, specials, seq_len - 1, seed)
        self.specials, self.start, self.n = specials, start, self.windows.n

    def batch(self, first: int, size: int) -> Batch:
        w, store = self.windows.seq_len, self.windows.store
        text = [store.window(self.windows.window_index(k) * w, w) for k in range(first, first + size)]
        rows = [np.append(t, self.specials.eos) for t in text]
        return seq2seq_batch(rows, np.stack(rows), self.start, self.specials.pad)


def seq2seq_objective(name: str, params: type[ObjectiveParams], prepare: Prepare, loss_name: str, what: str,
                      decoder_start: Literal["pad", "eos"], doc: str) -> ObjectiveRecord:
    """The record of an encoder-decoder objective on the layout of the same `name`: `prepare` corrupts the
    windows into `src`; the decoder writes the `labels`, scored by vocabulary cross-entropy (summed as
    `loss_name`); `specc check` asks for cross-attention (naming the objective `what`)."""

    def loss(p: ObjectiveParams, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        from specc.runtime.objectives.vocab_ce import vocab_cross_entropy  # torch: imported at the first loss

        return vocab_cross_entropy(outputs, "logits", batch.targets["labels"], sums, loss_name)

    def check(p: ObjectiveParams, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
        return needs_encoder_decoder(what, graph, span)

    return ObjectiveRecord(
        name=name, params=params, layout=name, accepts=frozenset(), inputs=("src", "src_mask", "tgt", "tgt_mask"),
        outputs=("logits",), loss=loss, prepare=prepare, check=check, seq2seq=True, decoder_start=decoder_start, doc=doc,
    )


@layout("span_corruption")
class SpanCorruptionWindows(Seq2SeqWindows):
    """T5: the decoder starts from the pad token (the record's `decoder_start`, which generation uses too)."""

    def __init__(self, store: TokenStore, specials: Specials, seq_len: int, seed: int):
        if not specials.sentinels:
            raise UserError("span corruption needs sentinel tokens, and the tokenizer has none; "
                            "set [tokenizer] sentinels = 100 (T5's <extra_id_N>)")
        super().__init__(store, specials, seq_len, seed, specials.pad)


def _prepare(p: SpanParams, batch: Batch, rng: np.random.Generator, specials: Specials, vocab: int) -> None:
    text = batch.targets["labels"][:, :-1].numpy()  # the windows (the layout's labels are window + EOS)
    pairs = [corrupt(row, p, specials.sentinels, rng) for row in text]
    src = [np.append(s, specials.eos) for s, _ in pairs]
    labels, _ = pad_rows([np.append(t, specials.eos) for _, t in pairs], -100)
    new = seq2seq_batch(src, labels, specials.pad, specials.pad)
    batch.inputs, batch.targets, batch.tokens = new.inputs, new.targets, new.tokens


register(seq2seq_objective(
    "span_corruption", SpanParams, _prepare, loss_name="span", what="span corruption", decoder_start="pad",
    doc="T5 span corruption: spans (15 %, mean length 3) become sentinels; the decoder writes them out.",
))
