"""BERT: a post-norm encoder with learned positions and token types; MLM and NSP heads under `cls.`.

RoBERTa (roberta.py) shares its encoder: the config fields, the spec edits, the
encoder's weight rules and the layout read off a graph are here.
"""

from __future__ import annotations

from typing import Any

from specc.hf.family import (
    ConfigReader, Family, GraphView, HFClass, SpecTree, Weights, dropout_param, hf_activation, mlm_head, register,
)
from specc.hf.headlayout import SPAN, TOKEN, HeadOp, TaskClass, TaskHeads
from specc.hf.rules import KeyLayout, Layout, RuleSet, copy_rule, fused, linear, mlm_head_rules, norm_rules

POOLER = {"pooler": r"^(bert\.|roberta\.)?pooler\.dense\.weight$"}  # a part found by a marker key
ENCODER_BUFFERS = r"^(bert\.|roberta\.)?embeddings\.(position_ids|token_type_ids)$"


def encoder_params(r: ConfigReader) -> tuple[dict[str, Any], str, float]:
    """Params shared by BERT and RoBERTa (HF defaults where a field is absent), activation, attention dropout."""
    params = {
        "vocab": r.int("vocab_size", 30522), "d_model": r.int("hidden_size", 768), "layers": r.int("num_hidden_layers", 12),
        "heads": r.int("num_attention_heads", 12), "d_ff": r.int("intermediate_size", 3072),
        "max_seq": r.int("max_position_embeddings", 512), "type_vocab": r.int("type_vocab_size", 2),
        "eps": r.float("layer_norm_eps", 1e-12), "std": r.float("initializer_range", 0.02),
        "dropout": r.float("hidden_dropout_prob", 0.1),
    }
    act = r.activation("hidden_act", "gelu")
    attention_dropout = r.float("attention_probs_dropout_prob", 0.1)
    r.expect("position_embedding_type", ("absolute",), "absolute", "relative key embeddings are not built")
    return params, act, attention_dropout


def finish_encoder(tree: SpecTree, params: dict[str, Any], act: str, attention_dropout: float, tied: bool) -> SpecTree:
    tree.set_params(params)
    tree.set("encoder_layer", "ffn", activation=act)
    mlm_head(tree, act, tied)
    dropout_param(tree, "dropout", "attention_dropout", attention_dropout, [("encoder_layer", "attention", "dropout")])
    return tree


def bert_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    params, act, attention_dropout = encoder_params(r)
    tied = r.take("tie_word_embeddings", True, bool)
    r.finish()
    return finish_encoder(BERT.start(cls), params, act, attention_dropout, tied)


def encoder_config(v: GraphView, model_type: str) -> dict[str, Any]:
    emb, pos = v.op("word_embeddings", "embedding"), v.op("position_embeddings", "learned_positions")
    attn, ffn = v.op("layer.0.attention", "attention"), v.op("layer.0.ffn", "feed_forward")
    return {
        "model_type": model_type, "vocab_size": emb.vocab, "hidden_size": emb.dim, "num_hidden_layers": v.count("layer"),
        "num_attention_heads": attn.heads, "intermediate_size": ffn.d_ff, "hidden_act": hf_activation(ffn.activation),
        "max_position_embeddings": pos.max_len, "type_vocab_size": v.op("token_type_embeddings", "embedding").vocab,
        "layer_norm_eps": v.op("embed_norm", "layer_norm").eps, "hidden_dropout_prob": v.op("embed_drop", "dropout").p,
        "attention_probs_dropout_prob": attn.dropout, "initializer_range": v.graph.spec.init_std,
        "position_embedding_type": "absolute", "tie_word_embeddings": not v.has("mlm_head") or v.tied("mlm_head", "decoder.weight") is not None,
    }


def bert_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    mlm, nsp = v.has("mlm_head"), v.has("nsp_head")
    cls = "BertForPreTraining" if mlm and nsp else "BertForMaskedLM" if mlm else "BertModel"
    return cls, encoder_config(v, "bert")


def encoder_layout(v: GraphView, cls: HFClass) -> Layout:
    parts = {part for part, node in (("pooler", "pooler"), ("mlm", "mlm_head"), ("nsp", "nsp_head")) if v.has(node)}
    return Layout(cls.prefix, v.count("layer"), 0, frozenset(parts))


def encoder_rules(lay: Layout) -> RuleSet:
    """BertModel / RobertaModel (same names) → `bert-base.toml` / `roberta-base.toml`."""
    p = lay.prefix
    rules = [
        copy_rule("word_embeddings.weight", f"{p}embeddings.word_embeddings.weight"),
        copy_rule("position_embeddings.weight", f"{p}embeddings.position_embeddings.weight"),
        copy_rule("token_type_embeddings.weight", f"{p}embeddings.token_type_embeddings.weight"),
        *norm_rules("embed_norm", f"{p}embeddings.LayerNorm"),
    ]
    if "pooler" in lay.parts:
        rules += linear("pooler", f"{p}pooler.dense")
    for i in range(lay.layers):
        src, dst = f"{p}encoder.layer.{i}.", f"layer.{i}."
        rules += fused(f"{dst}attention.qkv", [f"{src}attention.self.{n}" for n in ("query", "key", "value")], True)
        rules += linear(f"{dst}attention.o", f"{src}attention.output.dense")
        rules += norm_rules(f"{dst}attention_norm", f"{src}attention.output.LayerNorm")
        rules += linear(f"{dst}ffn.fc_in", f"{src}intermediate.dense")
        rules += linear(f"{dst}ffn.fc_out", f"{src}output.dense")
        rules += norm_rules(f"{dst}output_norm", f"{src}output.LayerNorm")
    return rules


def bert(lay: Layout) -> RuleSet:
    """BertModel, BertForMaskedLM, BertForPreTraining (heads under `cls.`)."""
    rules = encoder_rules(lay)
    if "mlm" in lay.parts:
        rules += mlm_head_rules("cls.predictions.", "cls.predictions.bias", "transform.dense", "transform.LayerNorm")
    if "nsp" in lay.parts:
        rules += linear("nsp_head", "cls.seq_relationship")
    return rules


def bert_detect(keys: list[str]) -> str | None:
    """`bert-pretraining` by its head bias (a BertForMaskedLM checkpoint is named with arch="bert-mlm"), else
    `bert` by its attention names unless the keys are RoBERTa's."""
    if "cls.predictions.bias" in keys:
        return "bert-pretraining"
    if any(k.endswith("attention.self.query.weight") for k in keys) and not is_roberta(keys):
        return "bert"
    return None


def is_roberta(keys: list[str]) -> bool:
    return any(k.startswith("roberta.") for k in keys) or "lm_head.dense.weight" in keys


def _rule_set(name: str, fixed: frozenset[str] = frozenset()) -> KeyLayout:
    return KeyLayout(name, bert, "bert.", r"encoder\.layer\.(\d+)\.", markers=POOLER, fixed=fixed, buffers=ENCODER_BUFFERS)


BERT = register(Family(
    "bert", (
        HFClass("BertModel", "bert-base.toml", "bert"),
        HFClass("BertForMaskedLM", "bert-base-pretraining.toml", "bert-mlm", "bert.", drop=("first_token", "pooler", "nsp_head")),
        HFClass("BertForPreTraining", "bert-base-pretraining.toml", "bert-pretraining", "bert."),
    ), bert_spec, bert_config, encoder_layout,
    rule_sets=(_rule_set("bert"), _rule_set("bert-mlm", frozenset({"mlm"})), _rule_set("bert-pretraining", frozenset({"mlm", "nsp"}))),
    detect=bert_detect, reference="bert-base.toml",
    heads=TaskHeads("bert.", (
        # [CLS] → pooler (dense + tanh) → dropout → classifier; the pooler is a linear node (BERT's `pooler`)
        # or the classification_head's own dense layer.
        TaskClass("sequence", (
            (HeadOp("pool", mode="first"), HeadOp("linear", (("", "bert.pooler.dense"),), activation="tanh", square=True),
             HeadOp("classification_head", (("out", "classifier"),))),
            (HeadOp("pool", mode="first"),
             HeadOp("classification_head", (("dense", "bert.pooler.dense"), ("out", "classifier")), hidden=True)),
        ), "the first token's ([CLS]) hidden state → a dense + tanh pooler → a linear classifier "
           "(pool mode first → linear tanh → classification_head)"),
        TOKEN, SPAN,
    )),
))
