"""Encoder-decoders: T5 (v1.0 and v1.1, relative position bias, RMSNorm) and BART (post-norm, offset positions)."""

from __future__ import annotations

from typing import Any

import torch

from specc.hf.family import (
    ACTIVATIONS, ConfigReader, Family, GraphView, HFClass, NotRepresentable, SpecTree, Weights, hf_activation, register,
)
from specc.hf.rules import Layout

_GATED = {"silu": "swiglu", "gelu": "geglu", "gelu_tanh": "geglu_tanh", "gelu_new": "geglu_new"}


# -- T5 ---------------------------------------------------------------------------------------
def _t5_activation(r: ConfigReader) -> str:
    """`feed_forward_proj` ("relu", "gated-gelu", ...) → a feed_forward activation."""
    proj = r.take("feed_forward_proj", "relu", str) or "relu"
    gated, _, name = proj.rpartition("-")
    if gated not in ("", "gated") or name not in ACTIVATIONS or (gated and ACTIVATIONS[name] not in _GATED):
        r.problem(f"field 'feed_forward_proj' = {proj!r} is not supported (specc builds relu, gelu, gelu_new, silu, "
                  "gated-gelu, gated-silu)")
        return "relu"
    act = "gelu_new" if proj == "gated-gelu" else ACTIVATIONS[name]  # transformers reads gated-gelu as gelu_new
    r.ignore("derived from feed_forward_proj", "dense_act_fn", "is_gated_act")
    return _GATED[act] if gated else act


def _untied_in(weights: Weights | None) -> bool:
    """Whether a checkpoint holds an LM head of its own (transformers 5 keeps such heads untied)."""
    if not weights or "lm_head.weight" not in weights or "shared.weight" not in weights:
        return False
    return not torch.equal(weights["lm_head.weight"], weights["shared.weight"])


def t5_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    layers = r.int("num_layers", 6)
    params = {
        "vocab": r.int("vocab_size", 32128), "d_model": r.int("d_model", 512), "heads": r.int("num_heads", 8),
        "head_dim": r.int("d_kv", 64), "d_ff": r.int("d_ff", 2048), "layers": layers,
        "buckets": r.int("relative_attention_num_buckets", 32), "max_distance": r.int("relative_attention_max_distance", 128),
        "dropout": r.float("dropout_rate", 0.1), "eps": r.float("layer_norm_epsilon", 1e-6),
    }
    decoder_layers = r.int("num_decoder_layers", layers)
    act = _t5_activation(r)
    tie_flag = r.take("tie_word_embeddings", True, bool)
    scale = r.take("scale_decoder_outputs", tie_flag is not False, bool)  # transformers 5 names what 4.x read off the tie
    tied = tie_flag is not False and not _untied_in(weights)
    r.expect("initializer_factor", (1.0, 1), 1.0, "the reference init is T5's at factor 1")
    r.expect("is_encoder_decoder", (True,), True)
    r.ignore("unused by T5 (relative positions have no table)", "n_positions")
    r.finish()
    tree = T5.start(cls, "t5-small.toml" if scale else "t5-v1_1-small.toml")
    tree.set_params(params)
    for block in ("encoder_layer", "decoder_layer"):
        tree.set(block, "ff", activation=act)
    if decoder_layers != layers:
        tree.set_params({"decoder_layers": decoder_layers})
        tree.set("model", "decoder", repeat="decoder_layers")
    if "lm_head" in tree.data["model"]["nodes"]:
        if tied:
            tree.set("model", "lm_head", tie="shared.weight")
        else:
            tree.unset("model", "lm_head", "tie")
    return tree


_T5_PROJ = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_new", "gelu_tanh": "gelu_pytorch_tanh", "silu": "silu",
            "geglu_new": "gated-gelu", "geglu_tanh": "gated-gelu_pytorch_tanh", "swiglu": "gated-silu"}


def t5_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    emb, bias = v.op("shared", "embedding"), v.op("encoder_bias", "t5_relative_bias")
    attn, ff = v.op("encoder.0.attn", "attention"), v.op("encoder.0.ff", "feed_forward")
    if ff.activation not in _T5_PROJ:
        raise NotRepresentable(f"T5's feed_forward_proj has no name for activation '{ff.activation}'")
    head, scale = v.has("lm_head"), v.has("rescale")
    tied = head and v.tied("lm_head") is not None
    if head and scale and not tied:
        raise NotRepresentable("transformers scales T5's decoder output only for a tied LM head")
    config = {
        "model_type": "t5", "vocab_size": emb.vocab, "d_model": emb.dim, "d_kv": attn.hd, "d_ff": ff.d_ff,
        "num_layers": v.count("encoder"), "num_decoder_layers": v.count("decoder"), "num_heads": attn.heads,
        "relative_attention_num_buckets": bias.buckets, "relative_attention_max_distance": bias.max_distance,
        "dropout_rate": v.op("encoder_drop", "dropout").p, "layer_norm_epsilon": v.op("encoder_norm", "rms_norm").eps,
        "initializer_factor": 1.0, "feed_forward_proj": _T5_PROJ[ff.activation], "is_encoder_decoder": True,
        "tie_word_embeddings": tied or not head or scale,
    }
    if head and tied and not scale:
        config["scale_decoder_outputs"] = False
    return ("T5ForConditionalGeneration" if head else "T5Model"), config


def t5_layout(v: GraphView, cls: HFClass) -> Layout:
    gated = v.op("encoder.0.ff", "feed_forward").gated
    return Layout("", v.count("encoder"), v.count("decoder"), frozenset({"gated"} if gated else set()))


T5 = register(Family("t5", (
    HFClass("T5Model", "t5-small.toml", "t5", drop=("rescale", "lm_head"), outputs=(("hidden", "decoder_out"),)),
    HFClass("T5ForConditionalGeneration", "t5-small.toml", "t5"),
), t5_spec, t5_config, t5_layout))


# -- BART -------------------------------------------------------------------------------------
def bart_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    layers, heads, d_ff = r.int("encoder_layers", 12), r.int("encoder_attention_heads", 16), r.int("encoder_ffn_dim", 4096)
    params = {
        "vocab": r.int("vocab_size", 50265), "max_seq": r.int("max_position_embeddings", 1024),
        "d_model": r.int("d_model", 1024), "heads": heads, "d_ff": d_ff, "layers": layers,
        "dropout": r.float("dropout", 0.1), "attention_dropout": r.float("attention_dropout", 0.0),
        "activation_dropout": r.float("activation_dropout", 0.0), "std": r.float("init_std", 0.02),
    }
    decoder = {"decoder_layers": r.int("decoder_layers", 12), "decoder_heads": r.int("decoder_attention_heads", 16),
               "decoder_d_ff": r.int("decoder_ffn_dim", 4096)}
    act = r.activation("activation_function", "gelu")
    scaled = r.take("scale_embedding", False, bool)
    tied = r.take("tie_word_embeddings", True, bool)
    r.expect("encoder_layerdrop", (0.0, 0), 0.0, "specc builds no layer drop")
    r.expect("decoder_layerdrop", (0.0, 0), 0.0, "specc builds no layer drop")
    r.expect("is_encoder_decoder", (True,), True)
    for key, value in (("normalize_before", False), ("add_final_layer_norm", False), ("add_bias_logits", False),
                       ("static_position_embeddings", False), ("normalize_embedding", True), ("extra_pos_embeddings", 2)):
        r.expect(key, (value,), value, "those are mBART's and other variants'")
    r.ignore("older alias of encoder_layers", "num_hidden_layers")
    r.ignore("a task head's dropout", "classif_dropout")
    r.ignore("a generation setting", "force_bos_token_to_be_generated")
    r.finish()
    tree = BART.start(cls)
    tree.set_params(params)
    for block in ("encoder_layer", "decoder_layer"):
        tree.set(block, "ffn", activation=act)
    _bart_decoder(tree, decoder, {"decoder_layers": layers, "decoder_heads": heads, "decoder_d_ff": d_ff})
    if scaled:
        for node in ("shared", "decoder_embed"):
            tree.set("model", node, scale="sqrt(d_model)")
    if not tied and "lm_head" in tree.data["model"]["nodes"]:
        tree.unset("model", "lm_head", "tie")
    return tree


def _bart_decoder(tree: SpecTree, decoder: dict[str, int], encoder: dict[str, int]) -> None:
    """Decoder layers, heads and widths of their own where they differ from the encoder's."""
    sites = {"decoder_layers": [("model", "decoder", "repeat")],
             "decoder_heads": [("decoder_layer", "self_attn", "heads"), ("decoder_layer", "encoder_attn", "heads")],
             "decoder_d_ff": [("decoder_layer", "ffn", "d_ff")]}
    for name, value in decoder.items():
        if value != encoder[name]:
            tree.set_params({name: value})
            for where, node, key in sites[name]:
                tree.set(where, node, **{key: name})


def bart_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    emb, pos = v.op("shared", "embedding"), v.op("encoder_positions", "learned_positions")
    enc, enc_ff = v.op("encoder.0.self_attn", "attention"), v.op("encoder.0.ffn", "feed_forward")
    dec, dec_ff = v.op("decoder.0.self_attn", "attention"), v.op("decoder.0.ffn", "feed_forward")
    head = v.has("lm_head")
    return ("BartForConditionalGeneration" if head else "BartModel"), {
        "model_type": "bart", "vocab_size": emb.vocab, "max_position_embeddings": pos.max_len - pos.offset,
        "d_model": emb.dim, "encoder_layers": v.count("encoder"), "decoder_layers": v.count("decoder"),
        "encoder_attention_heads": enc.heads, "decoder_attention_heads": dec.heads, "encoder_ffn_dim": enc_ff.d_ff,
        "decoder_ffn_dim": dec_ff.d_ff, "activation_function": hf_activation(enc_ff.activation),
        "dropout": v.op("encoder_drop", "dropout").p, "attention_dropout": enc.dropout,
        "activation_dropout": enc_ff.dropout, "init_std": v.graph.spec.init_std, "scale_embedding": emb.scale != 1.0,
        "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0, "is_encoder_decoder": True,
        "tie_word_embeddings": not head or v.tied("lm_head") is not None,
    }


BART = register(Family("bart", (
    HFClass("BartModel", "bart-base.toml", "bart", drop=("lm_head",), outputs=(("hidden", "decoder"),)),
    HFClass("BartForConditionalGeneration", "bart-base.toml", "bart", "model.", zeros=("final_logits_bias",)),
), bart_spec, bart_config, lambda v, cls: Layout(cls.prefix, v.count("encoder"), v.count("decoder"))))
