"""Causal language modelling: predict each next token (GPT)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.graph.queries import attention_nodes
from specc.runtime.batch import Batch, LossSums
from specc.runtime.objectives.base import ObjectiveParams, ObjectiveRecord, register

if TYPE_CHECKING:
    import torch
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")


def _loss(p: ObjectiveParams, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
    # In chunks from the LM head's features and weight when the model deferred its head: no full logits.
    from specc.runtime.objectives.vocab_ce import vocab_cross_entropy  # torch: imported at the first loss

    return vocab_cross_entropy(outputs, "logits", batch.targets["labels"], sums, "lm")


def _check(p: ObjectiveParams, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    leaks = [name for name, a in attention_nodes(graph) if not a.cross and not a.causal]
    if leaks:
        return [Diagnostic("E060", f"causal LM needs causal self-attention, but '{leaks[0]}' attends to future tokens", span,
                           "set causal = true on the decoder's self-attention, or use the mlm objective")]
    return []


register(ObjectiveRecord(
    name="causal_lm", params=ObjectiveParams, layout="packed", accepts=frozenset(), inputs=("tokens",), outputs=("logits",),
    loss=_loss, check=_check, decoder_only=True, doc="Next-token prediction on packed sequences with document separators.",
))
