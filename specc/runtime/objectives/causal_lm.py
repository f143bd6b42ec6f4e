"""Causal language modelling: predict each next token (GPT)."""

from __future__ import annotations

from typing import Mapping

import torch

from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.runtime.objectives.base import Batch, LossSums, ObjectiveParams, ObjectiveRecord, attention_nodes, register
from specc.runtime.objectives.vocab_ce import vocab_cross_entropy


def _loss(p: ObjectiveParams, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
    # In chunks from the LM head's features and weight when the model deferred its head: no full logits.
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
