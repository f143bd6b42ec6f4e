"""Llama: a decoder-only LM with RoPE, RMSNorm, a SwiGLU feed-forward and grouped-query attention."""

from __future__ import annotations

from typing import Any

from specc.hf.family import ConfigReader, Family, GraphView, HFClass, NotRepresentable, SpecTree, Weights, register
from specc.hf.rules import KeyLayout, Layout, RuleSet, attention, copy_rule, linear, norm_rules


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


def llama(lay: Layout) -> RuleSet:
    """LlamaForCausalLM (or LlamaModel) → `smollm2-135m.toml`: q/k/v fused (GQA sizes), SwiGLU gate/up/down."""
    p = lay.prefix
    bias, mlp_bias = "bias" in lay.parts, "mlp_bias" in lay.parts
    rules = [
        copy_rule("embed_tokens.weight", f"{p}embed_tokens.weight"),
        *norm_rules("norm", f"{p}norm", bias=False),
        copy_rule("lm_head.weight", "lm_head.weight", optional=True),  # tied to embed_tokens when the spec ties it
    ]
    for i in range(lay.layers):
        src, dst = f"{p}layers.{i}.", f"layers.{i}."
        rules += norm_rules(f"{dst}input_layernorm", f"{src}input_layernorm", bias=False)
        rules += attention(f"{dst}self_attn", f"{src}self_attn", ("q_proj", "k_proj", "v_proj", "o_proj"), bias)
        rules += norm_rules(f"{dst}post_attention_layernorm", f"{src}post_attention_layernorm", bias=False)
        rules += linear(f"{dst}mlp.fc_gate", f"{src}mlp.gate_proj", mlp_bias)
        rules += linear(f"{dst}mlp.fc_in", f"{src}mlp.up_proj", mlp_bias)
        rules += linear(f"{dst}mlp.fc_out", f"{src}mlp.down_proj", mlp_bias)
    return rules


def llama_detect(keys: list[str]) -> str | None:
    return "llama" if any(k.endswith("mlp.gate_proj.weight") for k in keys) else None


LLAMA = register(Family(
    "llama", (
        HFClass("LlamaModel", "smollm2-135m.toml", "llama", drop=("lm_head",)),
        HFClass("LlamaForCausalLM", "smollm2-135m.toml", "llama", "model."),
    ), llama_spec, llama_config, llama_layout,
    rule_sets=(KeyLayout("llama", llama, "model.", r"layers\.(\d+)\.", markers={
        "bias": r"^(model\.)?layers\.\d+\.self_attn\.q_proj\.bias$", "mlp_bias": r"^(model\.)?layers\.\d+\.mlp\.up_proj\.bias$"},
        buffers=r"^(model\.)?(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq$"),),
    detect=llama_detect, reference="smollm2-135m.toml",
))
