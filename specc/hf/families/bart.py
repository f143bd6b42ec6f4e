"""BART: a post-norm encoder-decoder with learned positions offset by 2."""

from __future__ import annotations

from typing import Any

from specc.hf.family import ConfigReader, Family, GraphView, HFClass, SpecTree, Weights, hf_activation, register
from specc.hf.rules import KeyLayout, Layout, RuleSet, attention, copy_rule, cross, linear, norm_rules


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


def bart(lay: Layout) -> RuleSet:
    """BartForConditionalGeneration (or BartModel) → `bart-base.toml`."""
    p = lay.prefix
    names = ("q_proj", "k_proj", "v_proj", "out_proj")
    rules = [
        copy_rule("shared.weight", f"{p}shared.weight"),
        copy_rule("shared.weight", f"{p}encoder.embed_tokens.weight", optional=True),
        copy_rule("decoder_embed.weight", f"{p}decoder.embed_tokens.weight", optional=True),
        copy_rule("lm_head.weight", "lm_head.weight", optional=True),
        copy_rule("encoder_positions.weight", f"{p}encoder.embed_positions.weight"),
        copy_rule("decoder_positions.weight", f"{p}decoder.embed_positions.weight"),
        *norm_rules("encoder_layernorm_embedding", f"{p}encoder.layernorm_embedding"),
        *norm_rules("decoder_layernorm_embedding", f"{p}decoder.layernorm_embedding"),
    ]
    for stack, count in (("encoder", lay.layers), ("decoder", lay.decoder_layers)):
        for i in range(count):
            src, dst = f"{p}{stack}.layers.{i}.", f"{stack}.{i}."
            rules += attention(f"{dst}self_attn", f"{src}self_attn", names, bias=True)
            rules += norm_rules(f"{dst}self_attn_layer_norm", f"{src}self_attn_layer_norm")
            if stack == "decoder":
                rules += cross(f"{dst}encoder_attn", f"{src}encoder_attn", names, bias=True)
                rules += norm_rules(f"{dst}encoder_attn_layer_norm", f"{src}encoder_attn_layer_norm")
            rules += linear(f"{dst}ffn.fc_in", f"{src}fc1")
            rules += linear(f"{dst}ffn.fc_out", f"{src}fc2")
            rules += norm_rules(f"{dst}final_layer_norm", f"{src}final_layer_norm")
    return rules


def bart_detect(keys: list[str]) -> str | None:
    return "bart" if any(k.endswith("encoder_attn.k_proj.weight") for k in keys) else None


BART = register(Family(
    "bart", (
        HFClass("BartModel", "bart-base.toml", "bart", drop=("lm_head",), outputs=(("hidden", "decoder"),)),
        HFClass("BartForConditionalGeneration", "bart-base.toml", "bart", "model.", zeros=("final_logits_bias",)),
    ), bart_spec, bart_config, lambda v, cls: Layout(cls.prefix, v.count("encoder"), v.count("decoder")),
    rule_sets=(KeyLayout("bart", bart, "model.", r"encoder\.layers\.(\d+)\.", r"decoder\.layers\.(\d+)\.",
                         zeros=("final_logits_bias",)),),
    detect=bart_detect, reference="bart-base.toml",
))
