"""BERT and RoBERTa: post-norm encoders with learned positions and token types.

RoBERTa is BERT's architecture with positions that start at pad + 1 and skip
pads, one token type, and a masked-LM head under `lm_head.` (no NSP).
"""

from __future__ import annotations

from typing import Any

from specc.hf.family import (
    ConfigReader, Family, GraphView, HFClass, NotRepresentable, SpecTree, Weights, dropout_param, hf_activation, mlm_head,
    register,
)
from specc.hf.rules import Layout


def _encoder_params(r: ConfigReader) -> tuple[dict[str, Any], str, float]:
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


def _finish_encoder(tree: SpecTree, params: dict[str, Any], act: str, attention_dropout: float, tied: bool) -> SpecTree:
    tree.set_params(params)
    tree.set("encoder_layer", "ffn", activation=act)
    mlm_head(tree, act, tied)
    dropout_param(tree, "dropout", "attention_dropout", attention_dropout, [("encoder_layer", "attention", "dropout")])
    return tree


def bert_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    params, act, attention_dropout = _encoder_params(r)
    tied = r.take("tie_word_embeddings", True, bool)
    r.finish()
    return _finish_encoder(BERT.start(cls), params, act, attention_dropout, tied)


def roberta_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    params, act, attention_dropout = _encoder_params(r)
    params["pad"] = r.int("pad_token_id", 1)  # positions count from pad + 1: part of the architecture here
    tied = r.take("tie_word_embeddings", True, bool)
    r.finish()
    return _finish_encoder(ROBERTA.start(cls), params, act, attention_dropout, tied)


def _encoder_config(v: GraphView, model_type: str) -> dict[str, Any]:
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
    return cls, _encoder_config(v, "bert")


def roberta_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    pos = v.op("position_embeddings", "learned_positions")
    if pos.pad_id is None or pos.offset != pos.pad_id + 1:
        raise NotRepresentable("RoBERTa's positions skip pads and start at pad_id + 1")
    cls = "RobertaForMaskedLM" if v.has("mlm_head") else "RobertaModel"
    return cls, {**_encoder_config(v, "roberta"), "pad_token_id": pos.pad_id}


def encoder_layout(v: GraphView, cls: HFClass) -> Layout:
    parts = {part for part, node in (("pooler", "pooler"), ("mlm", "mlm_head"), ("nsp", "nsp_head")) if v.has(node)}
    return Layout(cls.prefix, v.count("layer"), 0, frozenset(parts))


BERT = register(Family("bert", (
    HFClass("BertModel", "bert-base.toml", "bert"),
    HFClass("BertForMaskedLM", "bert-base-pretraining.toml", "bert-mlm", "bert.", drop=("first_token", "pooler", "nsp_head")),
    HFClass("BertForPreTraining", "bert-base-pretraining.toml", "bert-pretraining", "bert."),
), bert_spec, bert_config, encoder_layout))

ROBERTA = register(Family("roberta", (
    HFClass("RobertaModel", "roberta-base.toml", "roberta"),
    HFClass("RobertaForMaskedLM", "roberta-base-mlm.toml", "roberta", "roberta.", drop=("first_token", "pooler")),
), roberta_spec, roberta_config, encoder_layout))
