"""The objective registry and the interface every objective implements.

An objective is one record: which batch layout it needs (built from raw text
by `specc.runtime.data.batches`), how it changes a batch (MLM masking), which graph inputs
and outputs it needs, its loss, and a compatibility check against the
architecture that runs at `specc check` time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

from pydantic import Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.graph.queries import attention_nodes
from specc.runtime.batch import Batch, LossSums
from specc.registry import Registry
from specc.runtime.section import Section
from specc.runtime.data.tokenizer import Specials

if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")


class ObjectiveParams(Section):
    weight: float = Field(default=1.0, gt=0, description="this loss's weight in the sum of the objectives' losses")


Prepare = Callable[[Any, Batch, "np.random.Generator", Specials, int], None]  # params, batch, rng, specials, vocab size


@dataclass(frozen=True)
class ObjectiveRecord:
    name: str
    params: type[ObjectiveParams]
    layout: str  # batch layout it needs: "packed", "bert", "pairs", "span_corruption", "denoising"
    accepts: frozenset[str]  # layouts it can also ride on when combined with another objective
    inputs: tuple[str, ...]  # graph inputs it feeds (the model must declare them)
    outputs: tuple[str, ...]  # graph outputs it reads
    loss: Callable[[Any, Mapping[str, torch.Tensor], Batch, LossSums], torch.Tensor]
    prepare: Prepare | None = None
    check: Callable[[Any, LayerGraph, Span | None], list[Diagnostic]] = lambda p, g, s: []
    decoder_only: bool = False  # a causal LM: generation continues a prompt
    seq2seq: bool = False
    decoder_start: Literal["pad", "eos"] = "pad"  # seq2seq: the special token the decoder starts from (T5 pad, BART eos)
    doc: str = ""
    optional_inputs: tuple[str, ...] = ()  # graph inputs it feeds when the model declares them (else dropped)


OBJECTIVES: Registry[ObjectiveRecord] = Registry("objective")
register = OBJECTIVES.register


def cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor, sums: LossSums, name: str) -> torch.Tensor:
    """Mean CE over labels != -100, recording the exact sum and count for aggregation."""
    flat = logits.reshape(-1, logits.shape[-1]).float()
    target = labels.reshape(-1)
    total = torch.nn.functional.cross_entropy(flat, target, ignore_index=-100, reduction="sum")
    count = int((target != -100).sum())
    sums.add(name, float(total.detach()), count)
    return total / max(count, 1)


def needs_encoder_decoder(what: str, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    """A diagnostic unless the model has a decoder attending to an encoder (cross-attention)."""
    if any(a.cross for _, a in attention_nodes(graph)):
        return []
    return [Diagnostic("E067", f"{what} needs an encoder-decoder, but the model has no cross-attention", span,
                       "use a spec with a decoder that attends to an encoder (e.g. t5-tiny.toml), or the causal_lm / mlm objective")]


def member(tokens: np.ndarray, ids: frozenset[int] | set[int]) -> np.ndarray:
    """Boolean array: which entries of `tokens` are in `ids`."""
    return np.isin(tokens, np.fromiter(ids, dtype=np.int64, count=len(ids)))
