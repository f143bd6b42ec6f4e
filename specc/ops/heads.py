"""Modules of the output heads (records: `specc.ops.records.heads`): LM, masked LM, classification (sequence or token), span start/end.

The LM and MLM heads take an optional `select` mask so that only chosen
positions (the masked tokens of MLM) go through the vocabulary projection.
Both are a `VocabProjection`: features, then one linear map onto the
vocabulary, so a loss can take the features and the weight and never hold the
full-vocabulary logits (see `SpecModel`'s deferred outputs).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from specc.ops.layers import ACTIVATIONS, Initialisable, LayerNorm, Linear, fill_
from specc.ops.records.heads import ClassifierParams, LMHeadParams, MLMHeadParams, SpanParams


def _select(x: torch.Tensor, select: torch.Tensor | None) -> torch.Tensor:
    return x if select is None else x[select.bool()]  # (N, D) rows where select is true


class VocabProjection(nn.Module, metaclass=ABCMeta):
    """A head whose output is `F.linear(features(x, select), projection weight, projection bias)`."""

    @abstractmethod
    def features(self, x: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        ...

    @abstractmethod
    def projection(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight (vocab, d), bias (vocab,) or None) of the final vocabulary projection."""
        ...

    def forward(self, x: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(self.features(x, select), *self.projection())


class LMHead(Linear, VocabProjection):
    def __init__(self, p: LMHeadParams):
        super().__init__(p.d_model, p.vocab, p.bias, p.init_std)
    def features(self, x: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        return _select(x, select)
    def projection(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.weight, self.bias

    def forward(self, x: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return F.linear(_select(x, select), self.weight, self.bias)


class MLMHead(Initialisable, VocabProjection):
    """BERT's head: dense + activation + LayerNorm, then a (tied) decoder plus its own bias."""

    def __init__(self, p: MLMHeadParams):
        super().__init__()
        self.transform = Linear(p.d_model, p.d_model, True, p.init_std)
        self.norm = LayerNorm(p.d_model, p.eps)
        self.decoder = Linear(p.d_model, p.vocab, False, p.init_std)
        self.bias = nn.Parameter(torch.empty(p.vocab))
        self.act = ACTIVATIONS[p.activation]
    def features(self, x: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        return self.norm(self.act(self.transform(_select(x, select))))
    def projection(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.decoder.weight, self.bias

    def initialize(self, std: float, gen: torch.Generator) -> None:
        super().initialize(std, gen)
        fill_(self.bias, 0.0)


class Classifier(Initialisable):
    def __init__(self, p: ClassifierParams):
        super().__init__()
        self.dense = Linear(p.d_model, p.d_model, True, p.init_std) if p.hidden else None
        self.out = Linear(p.d_model, p.num_labels, True, p.init_std)
        self.dropout = p.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense is not None:
            x = torch.tanh(self.dense(F.dropout(x, self.dropout, self.training)))
        return self.out(F.dropout(x, self.dropout, self.training))


class SpanHead(Linear):
    """Start/end logits for extractive QA: (B, T, D) → (B, T, 2)."""

    def __init__(self, p: SpanParams):
        super().__init__(p.d_model, 2, True, p.init_std)
