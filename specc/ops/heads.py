"""Output heads: LM, masked LM, classification (sequence or token), span start/end.

The LM and MLM heads take an optional `select` mask so that only chosen
positions (the masked tokens of MLM) go through the vocabulary projection.
Both are a `VocabProjection`: features, then one linear map onto the
vocabulary, so a loss can take the features and the weight and never hold the
full-vocabulary logits (see `SpecModel`'s deferred outputs).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from specc.ops.base import (
    Initialisable, OpParams, OpRecord, Shape, ShapeError, fmt_shape, inputs, last_dim, register, tokens_of, with_last,
)
from specc.ops.base import fill_
from specc.ops.layers import ACTIVATIONS, LayerNorm, Linear


def _select(x: torch.Tensor, select: torch.Tensor | None) -> torch.Tensor:
    return x if select is None else x[select.bool()]  # (N, D) rows where select is true


def _selected_shape(x: Shape | None, select: Shape | None, d: int, out: int, what: str) -> Shape:
    last_dim(x, d, what, "d_model")
    assert x is not None
    if select is None:
        return with_last(x, out)
    if tuple(select) != tokens_of(x):
        raise ShapeError(f"{what} select mask {fmt_shape(select)} does not match tokens {fmt_shape(tokens_of(x))}")
    return ("selected", out)


class LMHeadParams(OpParams):
    d_model: int = Field(gt=0)
    vocab: int = Field(gt=0)
    bias: bool = False
    init_std: float | None = Field(default=None, ge=0)


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


register(OpRecord(
    name="lm_head", params=LMHeadParams, inputs=inputs("x", "select?"),
    shape=lambda p, s: _selected_shape(s["x"], s.get("select"), p.d_model, p.vocab, "lm_head"),
    param_shapes=lambda p: {"weight": (p.vocab, p.d_model), **({"bias": (p.vocab,)} if p.bias else {})},
    build=LMHead, flops=lambda p, s, t: 2 * p.d_model * p.vocab,
    doc="Vocabulary projection for causal and seq2seq LMs (often tied to the embedding).",
))


class MLMHeadParams(OpParams):
    d_model: int = Field(gt=0)
    vocab: int = Field(gt=0)
    activation: Literal["relu", "gelu", "gelu_tanh", "gelu_new", "silu", "tanh"] = "gelu"
    eps: float = Field(default=1e-12, gt=0)
    init_std: float | None = Field(default=None, ge=0)


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


register(OpRecord(
    name="mlm_head", params=MLMHeadParams, inputs=inputs("x", "select?"),
    shape=lambda p, s: _selected_shape(s["x"], s.get("select"), p.d_model, p.vocab, "mlm_head"),
    param_shapes=lambda p: {
        "transform.weight": (p.d_model, p.d_model), "transform.bias": (p.d_model,),
        "norm.weight": (p.d_model,), "norm.bias": (p.d_model,),
        "decoder.weight": (p.vocab, p.d_model), "bias": (p.vocab,),
    },
    build=MLMHead, flops=lambda p, s, t: 2 * p.d_model * (p.d_model + p.vocab),
    doc="Masked-LM head (BERT): transform, LayerNorm, decoder (tie it to the word embedding) + bias.",
))


class ClassifierParams(OpParams):
    d_model: int = Field(gt=0)
    num_labels: int = Field(gt=0)
    hidden: bool = False  # a dense + tanh layer first, as BERT's pooler / RoBERTa's head
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    init_std: float | None = Field(default=None, ge=0)


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


register(OpRecord(
    name="classification_head", params=ClassifierParams, inputs=inputs("x"),
    shape=lambda p, s: with_last(last_dim(s["x"], p.d_model, "classification_head", "d_model"), p.num_labels),
    param_shapes=lambda p: {
        **({"dense.weight": (p.d_model, p.d_model), "dense.bias": (p.d_model,)} if p.hidden else {}),
        "out.weight": (p.num_labels, p.d_model), "out.bias": (p.num_labels,),
    },
    build=Classifier, flops=lambda p, s, t: 2 * p.d_model * (p.num_labels + (p.d_model if p.hidden else 0)),
    doc="Labels from features: sequence classification (after pool), NSP, or per-token tagging.",
))


class SpanParams(OpParams):
    d_model: int = Field(gt=0)
    init_std: float | None = Field(default=None, ge=0)


class SpanHead(Linear):
    """Start/end logits for extractive QA: (B, T, D) → (B, T, 2)."""

    def __init__(self, p: SpanParams):
        super().__init__(p.d_model, 2, True, p.init_std)


def _span_shape(p: SpanParams, s: Mapping[str, Shape | None]) -> Shape:
    x = last_dim(s["x"], p.d_model, "span_head", "d_model")
    if len(x) != 3:
        raise ShapeError(f"span_head expects [batch, seq, {p.d_model}], got {fmt_shape(x)}")
    return with_last(x, 2)


register(OpRecord(
    name="span_head", params=SpanParams, inputs=inputs("x"), shape=_span_shape,
    param_shapes=lambda p: {"weight": (2, p.d_model), "bias": (2,)}, build=SpanHead,
    flops=lambda p, s, t: 4 * p.d_model, doc="Start and end logits for extractive question answering.",
))
