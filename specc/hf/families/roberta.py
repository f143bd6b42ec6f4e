"""RoBERTa: BERT's encoder (bert.py) with positions that start at pad + 1 and skip pads, one token type, and a
masked-LM head under `lm_head.` (no NSP)."""

from __future__ import annotations

from typing import Any

from specc.hf.families.bert import (
    ENCODER_BUFFERS, POOLER, encoder_config, encoder_layout, encoder_params, encoder_rules, finish_encoder, is_roberta,
)
from specc.hf.family import ConfigReader, Family, GraphView, HFClass, NotRepresentable, SpecTree, Weights, register
from specc.hf.headlayout import SPAN, TOKEN, HeadOp, TaskClass, TaskHeads
from specc.hf.rules import KeyLayout, Layout, RuleSet, mlm_head_rules


def roberta_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    params, act, attention_dropout = encoder_params(r)
    params["pad"] = r.int("pad_token_id", 1)  # positions count from pad + 1: part of the architecture here
    tied = r.take("tie_word_embeddings", True, bool)
    r.finish()
    return finish_encoder(ROBERTA.start(cls), params, act, attention_dropout, tied)


def roberta_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    pos = v.op("position_embeddings", "learned_positions")
    if pos.pad_id is None or pos.offset != pos.pad_id + 1:
        raise NotRepresentable("RoBERTa's positions skip pads and start at pad_id + 1")
    cls = "RobertaForMaskedLM" if v.has("mlm_head") else "RobertaModel"
    return cls, {**encoder_config(v, "roberta"), "pad_token_id": pos.pad_id}


def roberta(lay: Layout) -> RuleSet:
    """RobertaModel, RobertaForMaskedLM (head under `lm_head.`)."""
    rules = encoder_rules(lay)
    return rules + (mlm_head_rules("lm_head.", "lm_head.bias", norm="layer_norm") if "mlm" in lay.parts else [])


def roberta_detect(keys: list[str]) -> str | None:
    return "roberta" if is_roberta(keys) and "cls.predictions.bias" not in keys else None


ROBERTA = register(Family(
    "roberta", (
        HFClass("RobertaModel", "roberta-base.toml", "roberta"),
        HFClass("RobertaForMaskedLM", "roberta-base-mlm.toml", "roberta", "roberta.", drop=("first_token", "pooler")),
    ), roberta_spec, roberta_config, encoder_layout,
    rule_sets=(KeyLayout("roberta", roberta, "roberta.", r"encoder\.layer\.(\d+)\.",
                         markers={**POOLER, "mlm": r"^lm_head\.dense\.weight$"}, buffers=ENCODER_BUFFERS),),
    detect=roberta_detect, reference="roberta-base.toml",
    heads=TaskHeads("roberta.", (
        # <s> → dropout → dense + tanh → dropout → out_proj: the classification_head's own dense layer.
        TaskClass("sequence", ((
            HeadOp("pool", mode="first"),
            HeadOp("classification_head", (("dense", "classifier.dense"), ("out", "classifier.out_proj")), hidden=True),
        ),), "the first token's hidden state → dense + tanh → a linear layer (pool mode first "
             "→ classification_head with hidden = true)"),
        TOKEN, SPAN,
    )),
))
