"""Batches for the benchmark, made by the runtime's own data path.

A synthetic token store (random ordinary ids in documents of random length,
with sentence ends for next-sentence prediction) stands in for a tokenised
corpus, so no tokenizer has to be trained; the batch layouts and the
objectives' preparation (MLM masking, NSP pairs, T5 span corruption) are the
runtime's, as `specc train` runs them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specc.runtime.data.tokens import TokenStore, store_from_arrays, token_dtype
from specc.runtime.train.loop import BatchSource
from specc.runtime.batch import Batch
from specc.runtime.objectives import OBJECTIVES, ObjectiveSet
from specc.runtime.data.tokenizer import Specials

N_SPECIAL, SENTINELS = 8, 100
SENTENCE_END = 7


def _sentinels(vocab: int) -> int:
    return min(SENTINELS, vocab // 8)


def specials(vocab: int) -> Specials:
    sentinels = tuple(range(vocab - _sentinels(vocab), vocab))  # the top ids, as T5's <extra_id_N>
    return Specials(pad=0, eos=1, cls=2, sep=3, mask=4, unk=5, sentinels=sentinels,
                    sentence_ends=frozenset({SENTENCE_END}))


def synthetic_store(folder: Path, vocab: int, tokens: int = 200_000, seed: int = 0) -> TokenStore:
    """Documents of 50-800 random ordinary ids (about one in 15 a sentence end), each followed by EOS."""
    rng = np.random.default_rng(seed)
    hi = vocab - _sentinels(vocab)
    ids = rng.integers(N_SPECIAL, hi, size=tokens)
    ids[rng.random(tokens) < 1 / 15] = SENTENCE_END
    ends = np.cumsum(rng.integers(50, 800, size=tokens // 50))
    ends = np.append(ends[ends < tokens - 1], tokens - 1)
    ids[ends] = 1  # EOS closes each document
    lengths = np.diff(np.concatenate([[0], ends + 1]))
    return store_from_arrays(folder, ids, lengths, token_dtype(vocab))


@dataclass(frozen=True)
class _Vocabulary:
    """What `BatchSource` reads from a tokenizer."""

    specials: Specials
    vocab_size: int


def objectives(*names: str) -> ObjectiveSet:
    entries = tuple((OBJECTIVES[n], OBJECTIVES[n].params()) for n in names)
    layouts = {r.layout for r, _ in entries}
    layout = next(iter(layouts)) if len(layouts) == 1 else "pairs"  # MLM rides on NSP's pairs
    return ObjectiveSet(entries, layout)


class Source:
    """Training batches of `names` objectives over a synthetic store (removed with the object's folder)."""

    def __init__(self, names: tuple[str, ...], vocab: int, seq_len: int):
        self._tmp = tempfile.TemporaryDirectory(prefix="specc-bench-")
        store = synthetic_store(Path(self._tmp.name) / "store", vocab)
        self.objectives = objectives(*names)
        self.source = BatchSource(self.objectives, store, _Vocabulary(specials(vocab), vocab), seq_len, 0)  # type: ignore[arg-type]

    def batch(self, index: int, size: int) -> Batch:
        return self.source.get(index * size, size)


def hf_labels(batch: Batch) -> torch.Tensor:
    """BERT's MLM labels as `transformers` takes them: (B, T), the original token where selected, else -100."""
    select = batch.inputs["mlm_select"]
    full = torch.full(select.shape, -100, dtype=torch.long)
    full[select] = batch.targets["mlm_labels"]
    return full
