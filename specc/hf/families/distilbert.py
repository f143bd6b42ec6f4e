"""DistilBERT: BERT's encoder layer, no token types, no pooler; LayerNorm eps fixed at 1e-12."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from specc.hf.family import ConfigReader, Family, GraphView, HFClass, SpecTree, Weights, hf_activation, mlm_head, register
from specc.hf.headlayout import SPAN, TOKEN, HeadOp, TaskClass, TaskHeads
from specc.hf.rules import KeyLayout, Layout, RuleSet, attention, copy_rule, linear, mlm_head_rules, norm_rules

_TASK = "a task head's dropout; the spec keeps the base model and MLM head only"


def distilbert_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    params = {
        "vocab": r.int("vocab_size", 30522), "max_seq": r.int("max_position_embeddings", 512),
        "d_model": r.int("dim", 768), "heads": r.int("n_heads", 12), "layers": r.int("n_layers", 6),
        "d_ff": r.int("hidden_dim", 3072), "dropout": r.float("dropout", 0.1),
        "attention_dropout": r.float("attention_dropout", 0.1), "std": r.float("initializer_range", 0.02),
    }
    act = r.activation("activation", "gelu")
    r.expect("sinusoidal_pos_embds", (False,), False, "fixed sinusoidal tables are trained as learned positions")
    r.expect("tie_weights_", (True,), True)
    tied = r.take("tie_word_embeddings", True, bool)
    r.ignore(_TASK, "qa_dropout", "seq_classif_dropout")
    r.finish()
    tree = DISTILBERT.start(cls)
    tree.set_params(params)
    tree.set("encoder_layer", "ffn", activation=act)
    mlm_head(tree, act, tied)
    return tree


def distilbert_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    emb, pos = v.op("word_embeddings", "embedding"), v.op("position_embeddings", "learned_positions")
    attn, ffn = v.op("layer.0.attention", "attention"), v.op("layer.0.ffn", "feed_forward")
    cls = "DistilBertForMaskedLM" if v.has("mlm_head") else "DistilBertModel"
    return cls, {
        "model_type": "distilbert", "vocab_size": emb.vocab, "max_position_embeddings": pos.max_len,
        "sinusoidal_pos_embds": False, "n_layers": v.count("layer"), "n_heads": attn.heads, "dim": emb.dim,
        "hidden_dim": ffn.d_ff, "dropout": v.op("embed_drop", "dropout").p, "attention_dropout": attn.dropout,
        "activation": hf_activation(ffn.activation), "initializer_range": v.graph.spec.init_std,
        "tie_word_embeddings": not v.has("mlm_head") or v.tied("mlm_head", "decoder.weight") is not None,
    }


def distilbert_layout(v: GraphView, cls: HFClass) -> Layout:
    return Layout(cls.prefix, v.count("layer"), 0, frozenset({"mlm"} if v.has("mlm_head") else set()))


def distilbert(lay: Layout) -> RuleSet:
    """DistilBertModel, DistilBertForMaskedLM → `distilbert-base.toml` (BERT's node names)."""
    p = lay.prefix
    rules = [
        copy_rule("word_embeddings.weight", f"{p}embeddings.word_embeddings.weight"),
        copy_rule("position_embeddings.weight", f"{p}embeddings.position_embeddings.weight"),
        *norm_rules("embed_norm", f"{p}embeddings.LayerNorm"),
    ]
    for i in range(lay.layers):
        src, dst = f"{p}transformer.layer.{i}.", f"layer.{i}."
        rules += attention(f"{dst}attention", f"{src}attention", ("q_lin", "k_lin", "v_lin", "out_lin"), True)
        rules += norm_rules(f"{dst}attention_norm", f"{src}sa_layer_norm")
        rules += linear(f"{dst}ffn.fc_in", f"{src}ffn.lin1")
        rules += linear(f"{dst}ffn.fc_out", f"{src}ffn.lin2")
        rules += norm_rules(f"{dst}output_norm", f"{src}output_layer_norm")
    if "mlm" in lay.parts:
        rules += mlm_head_rules("", "vocab_projector.bias", "vocab_transform", "vocab_layer_norm", "vocab_projector")
    return rules


def distilbert_detect(keys: list[str]) -> str | None:
    return "distilbert" if any(k.endswith("attention.q_lin.weight") for k in keys) else None


DISTILBERT = register(Family(
    "distilbert", (
        HFClass("DistilBertModel", "distilbert-base.toml", "distilbert"),
        HFClass("DistilBertForMaskedLM", "distilbert-base-mlm.toml", "distilbert", "distilbert."),
    ), distilbert_spec, distilbert_config, distilbert_layout,
    rule_sets=(KeyLayout("distilbert", distilbert, "distilbert.", r"transformer\.layer\.(\d+)\.",
                         markers={"mlm": r"^vocab_transform\.weight$"}, buffers=r"^(distilbert\.)?embeddings\.position_ids$"),),
    detect=distilbert_detect, reference="distilbert-base.toml",
    heads=TaskHeads("distilbert.", (
        # [CLS] → pre_classifier (dense + ReLU) → dropout → classifier; its dropout is `seq_classif_dropout`.
        TaskClass("sequence", ((
            HeadOp("pool", mode="first"), HeadOp("linear", (("", "pre_classifier"),), activation="relu", square=True),
            HeadOp("classification_head", (("out", "classifier"),)),
        ),), "the first token's hidden state → dense + ReLU (pre_classifier) → a linear classifier (pool mode first "
             "→ linear relu → classification_head)", dropout_key="seq_classif_dropout"),
        replace(TOKEN, dropout_key=None), SPAN,  # DistilBERT's tagger uses the model's `dropout`
    )),
))
