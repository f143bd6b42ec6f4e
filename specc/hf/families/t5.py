"""T5 (v1.0 and v1.1): an encoder-decoder with relative position bias, RMSNorm, and a ReLU or gated-GELU feed-forward."""

from __future__ import annotations

from typing import Any

import torch

from specc.hf.family import ACTIVATIONS, ConfigReader, Family, GraphView, HFClass, NotRepresentable, SpecTree, Weights, register
from specc.hf.rules import KeyLayout, Layout, RuleSet, attention, copy_rule, cross, linear, norm_rules

_GATED = {"silu": "swiglu", "gelu": "geglu", "gelu_tanh": "geglu_tanh", "gelu_new": "geglu_new"}


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


def _t5_ffn(dst: str, src: str, gated: bool) -> RuleSet:
    """ReLU (v1.0: `wi`) or gated-GELU (v1.1: gelu(`wi_0`) * `wi_1`, our fc_gate and fc_in)."""
    if gated:
        rules = linear(f"{dst}.fc_gate", f"{src}.wi_0", bias=False) + linear(f"{dst}.fc_in", f"{src}.wi_1", bias=False)
    else:
        rules = linear(f"{dst}.fc_in", f"{src}.wi", bias=False)
    return rules + linear(f"{dst}.fc_out", f"{src}.wo", bias=False)


def t5(lay: Layout) -> RuleSet:
    """T5ForConditionalGeneration (or T5Model) → `t5-small.toml` / `t5-v1_1-small.toml`."""
    gated = "gated" in lay.parts
    rules = [
        copy_rule("shared.weight", "shared.weight"),
        copy_rule("shared.weight", "encoder.embed_tokens.weight", optional=True),
        copy_rule("decoder_embed.weight", "decoder.embed_tokens.weight", optional=True),
        copy_rule("lm_head.weight", "lm_head.weight", optional=True),  # tied in v1.0, its own in v1.1
        copy_rule("encoder_bias.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        copy_rule("decoder_bias.weight", "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        *norm_rules("encoder_norm", "encoder.final_layer_norm", bias=False),
        *norm_rules("decoder_norm", "decoder.final_layer_norm", bias=False),
    ]
    names = ("q", "k", "v", "o")
    for i in range(lay.layers):
        src, dst = f"encoder.block.{i}.layer.", f"encoder.{i}."
        rules += norm_rules(f"{dst}attn_norm", f"{src}0.layer_norm", bias=False)
        rules += attention(f"{dst}attn", f"{src}0.SelfAttention", names, bias=False)
        rules += norm_rules(f"{dst}ff_norm", f"{src}1.layer_norm", bias=False)
        rules += _t5_ffn(f"{dst}ff", f"{src}1.DenseReluDense", gated)
    for i in range(lay.decoder_layers):
        src, dst = f"decoder.block.{i}.layer.", f"decoder.{i}."
        rules += norm_rules(f"{dst}self_norm", f"{src}0.layer_norm", bias=False)
        rules += attention(f"{dst}self_attn", f"{src}0.SelfAttention", names, bias=False)
        rules += norm_rules(f"{dst}cross_norm", f"{src}1.layer_norm", bias=False)
        rules += cross(f"{dst}cross_attn", f"{src}1.EncDecAttention", names, bias=False)
        rules += norm_rules(f"{dst}ff_norm", f"{src}2.layer_norm", bias=False)
        rules += _t5_ffn(f"{dst}ff", f"{src}2.DenseReluDense", gated)
    return rules


def t5_detect(keys: list[str]) -> str | None:
    return "t5" if any("EncDecAttention" in k for k in keys) else None


T5 = register(Family(
    "t5", (
        HFClass("T5Model", "t5-small.toml", "t5", drop=("rescale", "lm_head"), outputs=(("hidden", "decoder_out"),)),
        HFClass("T5ForConditionalGeneration", "t5-small.toml", "t5"),
    ), t5_spec, t5_config, t5_layout,
    rule_sets=(KeyLayout("t5", t5, "", r"encoder\.block\.(\d+)\.", r"decoder\.block\.(\d+)\.",
                         markers={"gated": r"^(en|de)coder\.block\.\d+\.layer\.\d\.DenseReluDense\.wi_0\.weight$"}),),
    detect=t5_detect, reference="t5-v1_1-small.toml",
))
