"""Records of the output heads: LM, masked LM, classification (sequence or token), span start/end."""

from __future__ import annotations

from typing import Literal, Mapping

from pydantic import Field

from specc.ops.base import (
    Example, OpParams, OpRecord, Shape, ShapeError, fmt_shape, inputs, last_dim, register, tokens_of, with_last,
)

INIT_STD = "std of the normal init of the weights (default: the spec's init.std)"
SELECT = "[batch, seq, d_model] (select [batch, seq]: only the selected rows) → [batch, seq, vocab] ([selected, vocab])"


def _selected_shape(x: Shape | None, select: Shape | None, d: int, out: int, what: str) -> Shape:
    last_dim(x, d, what, "d_model")
    assert x is not None
    if select is None:
        return with_last(x, out)
    if tuple(select) != tokens_of(x):
        raise ShapeError(f"{what} select mask {fmt_shape(select)} does not match tokens {fmt_shape(tokens_of(x))}")
    return ("selected", out)


class LMHeadParams(OpParams):
    d_model: int = Field(gt=0, description="size of the input features")
    vocab: int = Field(gt=0, description="size of the vocabulary, the output's last dimension")
    bias: bool = Field(default=False, description="add a learned bias per token")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)


register(OpRecord(
    name="lm_head", capabilities=frozenset({"vocab_head"}), params=LMHeadParams, inputs=inputs("x", "select?"),
    shape=lambda p, s: _selected_shape(s["x"], s.get("select"), p.d_model, p.vocab, "lm_head"),
    param_shapes=lambda p: {"weight": (p.vocab, p.d_model), **({"bias": (p.vocab,)} if p.bias else {})},
    builder="specc.ops.heads:LMHead", flops=lambda p, s, t: 2 * p.d_model * p.vocab,
    doc="Vocabulary projection for causal and seq2seq LMs (often tied to the embedding).",
    shape_rule=SELECT,
    example=Example("lm_head", ("ln_f",), {"d_model": "d_model", "vocab": "vocab", "tie": "wte.weight"}),
))


class MLMHeadParams(OpParams):
    d_model: int = Field(gt=0, description="size of the input features")
    vocab: int = Field(gt=0, description="size of the vocabulary, the output's last dimension")
    activation: Literal["relu", "gelu", "gelu_tanh", "gelu_new", "silu", "tanh"] = Field(
        default="gelu", description="activation of the transform layer")
    eps: float = Field(default=1e-12, gt=0, description="epsilon of the transform's LayerNorm")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)


register(OpRecord(
    name="mlm_head", capabilities=frozenset({"vocab_head"}), params=MLMHeadParams, inputs=inputs("x", "select?"),
    shape=lambda p, s: _selected_shape(s["x"], s.get("select"), p.d_model, p.vocab, "mlm_head"),
    param_shapes=lambda p: {
        "transform.weight": (p.d_model, p.d_model), "transform.bias": (p.d_model,),
        "norm.weight": (p.d_model,), "norm.bias": (p.d_model,),
        "decoder.weight": (p.vocab, p.d_model), "bias": (p.vocab,),
    },
    builder="specc.ops.heads:MLMHead", flops=lambda p, s, t: 2 * p.d_model * (p.d_model + p.vocab),
    doc="Masked-LM head (BERT): transform, LayerNorm, decoder (tie it to the word embedding) + bias.",
    shape_rule=SELECT,
    example=Example("mlm", {"x": "h", "select": "mlm_select"},
                    {"d_model": "d_model", "vocab": "vocab", "tie": {"decoder.weight": "wte.weight"}}),
))


class ClassifierParams(OpParams):
    d_model: int = Field(gt=0, description="size of the input features")
    num_labels: int = Field(gt=0, description="number of classes, the output's last dimension")
    hidden: bool = Field(default=False, description="a dense + tanh layer first, as BERT's pooler / RoBERTa's head")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout before each linear layer")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)


register(OpRecord(
    name="classification_head", params=ClassifierParams, inputs=inputs("x"),
    shape=lambda p, s: with_last(last_dim(s["x"], p.d_model, "classification_head", "d_model"), p.num_labels),
    param_shapes=lambda p: {
        **({"dense.weight": (p.d_model, p.d_model), "dense.bias": (p.d_model,)} if p.hidden else {}),
        "out.weight": (p.num_labels, p.d_model), "out.bias": (p.num_labels,),
    },
    builder="specc.ops.heads:Classifier",
    flops=lambda p, s, t: 2 * p.d_model * (p.num_labels + (p.d_model if p.hidden else 0)),
    doc="Labels from features: sequence classification (after pool), NSP, or per-token tagging.",
    shape_rule="[..., d_model] → [..., num_labels]",
    example=Example("classifier", ("pooled",), {"d_model": "d_model", "num_labels": 2, "hidden": True}),
))


class SpanParams(OpParams):
    d_model: int = Field(gt=0, description="size of the input features")
    init_std: float | None = Field(default=None, ge=0, description=INIT_STD)


def _span_shape(p: SpanParams, s: Mapping[str, Shape | None]) -> Shape:
    x = last_dim(s["x"], p.d_model, "span_head", "d_model")
    if len(x) != 3:
        raise ShapeError(f"span_head expects [batch, seq, {p.d_model}], got {fmt_shape(x)}")
    return with_last(x, 2)


register(OpRecord(
    name="span_head", params=SpanParams, inputs=inputs("x"), shape=_span_shape,
    param_shapes=lambda p: {"weight": (2, p.d_model), "bias": (2,)}, builder="specc.ops.heads:SpanHead",
    flops=lambda p, s, t: 4 * p.d_model, doc="Start and end logits for extractive question answering.",
    shape_rule="[batch, seq, d_model] → [batch, seq, 2] (start, end)",
    example=Example("span", ("h",), {"d_model": "d_model"}),
))
