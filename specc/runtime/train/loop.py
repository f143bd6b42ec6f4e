"""Pieces of the training loop shared by train and eval: batches, devices, evaluation."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from specc.runtime.device import autocast, perplexity, pick_device  # noqa: F401  (re-exported)
from specc.runtime import distributed
from specc.runtime.data.batches import LAYOUTS, Layout
from specc.runtime.config import TrainConfig
from specc.runtime.data.tokens import TokenStore
from specc.runtime.batch import Batch, LossSums
from specc.runtime.objectives import ObjectiveSet
from specc.runtime.data.tokenizer import TextTokenizer

VAL_SEED_OFFSET = 7919  # validation samples use their own stream, fixed across evaluations


class BatchSource:
    """Batches of one split: layout + objective preparation, each a pure function of its index."""

    def __init__(self, objectives: ObjectiveSet, store: TokenStore, tok: TextTokenizer, seq_len: int, seed: int):
        self.objectives, self.tok, self.seed = objectives, tok, seed
        self.layout: Layout = LAYOUTS[objectives.layout](store, tok.specials, seq_len, seed)

    def get(self, first: int, size: int) -> Batch:
        batch = self.layout.batch(first, size)
        rng = np.random.default_rng([self.seed, 1, first])
        self.objectives.prepare(batch, rng, self.tok.specials, self.tok.vocab_size)
        return batch


def val_ranges(source: BatchSource, cfg: TrainConfig) -> list[tuple[int, int]]:
    """(first sample, size) of the first `eval_batches` batches of the validation stream, never
    wrapping past one pass over it when the layout knows its size (a small split is not counted twice)."""
    total = cfg.eval_batches * cfg.batch_size
    size = getattr(source.layout, "n", None)
    if isinstance(size, int):
        total = min(total, max(size, 1))
    return [(first, min(cfg.batch_size, total - first)) for first in range(0, total, cfg.batch_size)]


def val_batches(source: BatchSource, cfg: TrainConfig) -> Iterator[Batch]:
    """The batches of `val_ranges`."""
    for first, size in val_ranges(source, cfg):
        yield source.get(first, size)


def evaluate_shared(model: torch.nn.Module, objectives: ObjectiveSet, source: BatchSource, cfg: TrainConfig,
                    device: torch.device) -> LossSums:
    """`evaluate` over the validation batches, shared among the processes of a torchrun job (batch i
    on process i mod N) and summed over them: the totals one process computes over all batches."""
    me = distributed.ranks()
    ranges = val_ranges(source, cfg)
    mine = ranges[me.rank::me.world]
    sums = evaluate(model, objectives, (source.get(*r) for r in mine), device, cfg.precision)
    short = -(-len(ranges) // me.world) - len(mine)
    if short and _sharded(model):  # FSDP gathers weights in every forward: each process runs as many
        evaluate(model, objectives, (source.get(*ranges[0]) for _ in range(short)), device, cfg.precision)
    return distributed.sum_over_ranks(sums)


def _sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@torch.no_grad()
def evaluate(model: torch.nn.Module, objectives: ObjectiveSet, batches: Iterator[Batch], device: torch.device,
             precision: str) -> LossSums:
    """Exact loss totals over `batches` (sums and counts, not averages of averages)."""
    was_training = model.training
    model.eval()
    sums = LossSums()
    for batch in batches:
        batch = batch.to(device)
        with autocast(device, precision):
            outputs = model(**batch.inputs)
        objectives.loss(outputs, batch, sums)
    model.train(was_training)
    return sums


def unigram_loss(train: TokenStore, val: TokenStore, vocab: int) -> float:
    """Cross-entropy of an add-one unigram model fitted on train, on the val tokens (a baseline).
    Read chunk by chunk, so a corpus of any size costs the same memory."""
    counts = np.ones(vocab, dtype=np.float64)
    for part in train.chunks():
        counts += np.bincount(part, minlength=vocab)[:vocab]
    logp = np.log(counts / counts.sum())
    total = sum(float(logp[part].sum()) for part in val.chunks())
    return -total / max(len(val), 1)
