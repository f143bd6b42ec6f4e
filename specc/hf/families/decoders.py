"""Decoder-only LMs: GPT-2 (learned positions, LayerNorm, GELU) and Llama (RoPE, RMSNorm, SwiGLU, GQA)."""

from __future__ import annotations

from typing import Any

from specc.hf.family import (
    ConfigReader, Family, GraphView, HFClass, NotRepresentable, SpecTree, Weights, dropout_param, hf_activation, register,
)
from specc.hf.rules import Layout


# -- GPT-2 --------------------------------------------------------------------------------------
def gpt2_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    d_model = r.int("n_embd", 768)
    params = {
        "vocab": r.int("vocab_size", 50257), "max_seq": r.int("n_positions", 1024), "d_model": d_model,
        "heads": r.int("n_head", 12), "layers": r.int("n_layer", 12), "d_ff": r.int("n_inner", 4 * (d_model or 0)),
        "dropout": r.float("resid_pdrop", 0.1), "eps": r.float("layer_norm_epsilon", 1e-5),
        "std": r.float("initializer_range", 0.02),
    }
    act = r.activation("activation_function", "gelu_new")
    embd, attn = r.float("embd_pdrop", 0.1), r.float("attn_pdrop", 0.1)
    tied = r.take("tie_word_embeddings", True, bool)
    r.expect("scale_attn_weights", (True,), True)
    r.expect("scale_attn_by_inverse_layer_idx", (False,), False)
    r.ignore("upcasts attention to fp32 under mixed precision; fp32 outputs are the same", "reorder_and_upcast_attn")
    r.ignore("older name of n_positions", "n_ctx")
    r.ignore("settings of GPT2DoubleHeadsModel's multiple-choice head", "summary_type", "summary_use_proj",
             "summary_activation", "summary_proj_to_labels", "summary_first_dropout")
    r.finish()
    tree = GPT2.start(cls)
    tree.set_params(params)
    tree.set("decoder_layer", "mlp", activation=act)
    dropout_param(tree, "dropout", "embed_dropout", embd, [("model", "drop", "p")])
    dropout_param(tree, "dropout", "attention_dropout", attn, [("decoder_layer", "attn", "dropout")])
    if not tied and "lm_head" in tree.data["model"]["nodes"]:
        tree.unset("model", "lm_head", "tie")
    return tree


def gpt2_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    emb, pos = v.op("wte", "embedding"), v.op("wpe", "learned_positions")
    attn, mlp = v.op("h.0.attn", "attention"), v.op("h.0.mlp", "feed_forward")
    head = v.has("lm_head")
    return ("GPT2LMHeadModel" if head else "GPT2Model"), {
        "model_type": "gpt2", "vocab_size": emb.vocab, "n_positions": pos.max_len, "n_embd": emb.dim,
        "n_layer": v.count("h"), "n_head": attn.heads, "n_inner": mlp.d_ff, "activation_function": hf_activation(mlp.activation),
        "resid_pdrop": v.op("h.0.attn_drop", "dropout").p, "embd_pdrop": v.op("drop", "dropout").p, "attn_pdrop": attn.dropout,
        "layer_norm_epsilon": v.op("ln_f", "layer_norm").eps, "initializer_range": v.graph.spec.init_std,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        "tie_word_embeddings": not head or v.tied("lm_head") is not None,
    }


GPT2 = register(Family("gpt2", (
    HFClass("GPT2Model", "gpt2-small.toml", "gpt2", drop=("lm_head",)),
    HFClass("GPT2LMHeadModel", "gpt2-small.toml", "gpt2", "transformer."),
), gpt2_spec, gpt2_config, lambda v, cls: Layout(cls.prefix, v.count("h"))))


# -- Llama --------------------------------------------------------------------------------------
def _rope_base(r: ConfigReader) -> float:
    """RoPE's base from `rope_parameters` (transformers 5) or `rope_theta` (4.x); scaled variants are refused."""
    base = r.float("rope_theta", 10000.0)
    rope = r.take("rope_parameters", None, dict)
    if rope is not None:
        if rope.get("rope_type", "default") != "default" or set(rope) - {"rope_type", "rope_theta"}:
            r.problem(f"field 'rope_parameters' = {rope!r} is not supported (specc builds plain RoPE: rope_type 'default')")
        base = float(rope.get("rope_theta", base))
    scaling = r.take("rope_scaling", None, dict)
    if scaling is not None and scaling.get("rope_type", scaling.get("type")) != "default":
        r.problem(f"field 'rope_scaling' = {scaling!r} is not supported (specc builds plain RoPE)")
    return base


def llama_spec(r: ConfigReader, cls: HFClass, weights: Weights | None) -> SpecTree:
    d_model, heads = r.int("hidden_size", 4096), r.int("num_attention_heads", 32)
    params = {
        "vocab": r.int("vocab_size", 32000), "max_seq": r.int("max_position_embeddings", 2048), "d_model": d_model,
        "heads": heads, "kv_heads": r.int("num_key_value_heads", heads), "d_ff": r.int("intermediate_size", 11008),
        "layers": r.int("num_hidden_layers", 32), "eps": r.float("rms_norm_eps", 1e-6),
        "std": r.float("initializer_range", 0.02), "dropout": r.float("attention_dropout", 0.0), "rope_base": _rope_base(r),
    }
    if d_model and heads:
        params["head_dim"] = r.int("head_dim", d_model // heads)
    r.expect("hidden_act", ("silu",), "silu", "the gated feed-forward is SwiGLU")
    tied = r.take("tie_word_embeddings", False, bool)
    attention_bias, mlp_bias = r.take("attention_bias", False, bool), r.take("mlp_bias", False, bool)
    r.expect("rope_interleaved", (False,), False, "RoPE rotates the two halves of each head (rotate_half)")
    r.ignore("a tensor-parallel slicing of the same matmuls", "pretraining_tp")
    r.finish()
    tree = LLAMA.start(cls)
    tree.set_params(params)
    if attention_bias:
        tree.set("decoder_layer", "self_attn", bias=True)
    if mlp_bias:
        tree.set("decoder_layer", "mlp", bias=True)
    if not tied and "lm_head" in tree.data["model"]["nodes"]:
        tree.unset("model", "lm_head", "tie")
    return tree


def llama_config(v: GraphView) -> tuple[str, dict[str, Any]]:
    emb, attn, mlp = v.op("embed_tokens", "embedding"), v.op("layers.0.self_attn", "attention"), v.op("layers.0.mlp", "feed_forward")
    if mlp.activation != "swiglu":
        raise NotRepresentable(f"Llama's feed-forward is SwiGLU, not {mlp.activation}")
    head = v.has("lm_head")
    return ("LlamaForCausalLM" if head else "LlamaModel"), {
        "model_type": "llama", "vocab_size": emb.vocab, "hidden_size": emb.dim, "intermediate_size": mlp.d_ff,
        "num_hidden_layers": v.count("layers"), "num_attention_heads": attn.heads, "num_key_value_heads": attn.n_kv,
        "head_dim": attn.hd, "hidden_act": "silu", "max_position_embeddings": v.spec_param("max_seq", 2048),
        "rms_norm_eps": v.op("norm", "rms_norm").eps, "initializer_range": v.graph.spec.init_std,
        "rope_theta": attn.rope_base, "rope_parameters": {"rope_type": "default", "rope_theta": attn.rope_base},
        "attention_bias": attn.bias, "attention_dropout": attn.dropout, "mlp_bias": mlp.bias,
        "tie_word_embeddings": head and v.tied("lm_head") is not None,
    }


def llama_layout(v: GraphView, cls: HFClass) -> Layout:
    attn, mlp = v.op("layers.0.self_attn", "attention"), v.op("layers.0.mlp", "feed_forward")
    parts = {p for p, on in (("bias", attn.bias), ("mlp_bias", mlp.bias)) if on}
    return Layout(cls.prefix, v.count("layers"), 0, frozenset(parts))


LLAMA = register(Family("llama", (
    HFClass("LlamaModel", "smollm2-135m.toml", "llama", drop=("lm_head",)),
    HFClass("LlamaForCausalLM", "smollm2-135m.toml", "llama", "model."),
), llama_spec, llama_config, llama_layout))
