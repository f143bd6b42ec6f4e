"""GPT-2: a decoder-only LM with learned positions, pre-LayerNorm, GELU, and Conv1D weights stored (in, out)."""

from __future__ import annotations

from typing import Any

from specc.hf.family import ConfigReader, Family, GraphView, HFClass, SpecTree, Weights, dropout_param, hf_activation, register
from specc.hf.headlayout import SPAN, TOKEN, HeadOp, TaskClass, TaskHeads
from specc.hf.rules import KeyLayout, Layout, RuleSet, copy_rule, linear, norm_rules


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


def gpt2(lay: Layout) -> RuleSet:
    """GPT2LMHeadModel (or GPT2Model) → `gpt2-small.toml`. GPT-2's Conv1D stores (in, out): transpose."""
    p = lay.prefix
    rules = [
        copy_rule("wte.weight", f"{p}wte.weight"),
        copy_rule("wpe.weight", f"{p}wpe.weight"),
        *norm_rules("ln_f", f"{p}ln_f"),
        copy_rule("lm_head.weight", "lm_head.weight", optional=True),  # tied to wte unless the spec unties it
    ]
    for i in range(lay.layers):
        src, dst = f"{p}h.{i}.", f"h.{i}."
        rules += norm_rules(f"{dst}ln_1", f"{src}ln_1")
        rules += linear(f"{dst}attn.qkv", f"{src}attn.c_attn", how="transpose")  # q, k, v already fused
        rules += linear(f"{dst}attn.o", f"{src}attn.c_proj", how="transpose")
        rules += norm_rules(f"{dst}ln_2", f"{src}ln_2")
        rules += linear(f"{dst}mlp.fc_in", f"{src}mlp.c_fc", how="transpose")
        rules += linear(f"{dst}mlp.fc_out", f"{src}mlp.c_proj", how="transpose")
    return rules


def gpt2_detect(keys: list[str]) -> str | None:
    return "gpt2" if any(k.endswith("attn.c_attn.weight") for k in keys) else None


GPT2 = register(Family(
    "gpt2", (
        HFClass("GPT2Model", "gpt2-small.toml", "gpt2", drop=("lm_head",)),
        HFClass("GPT2LMHeadModel", "gpt2-small.toml", "gpt2", "transformer."),
    ), gpt2_spec, gpt2_config, lambda v, cls: Layout(cls.prefix, v.count("h")),
    rule_sets=(KeyLayout("gpt2", gpt2, "transformer.", r"h\.(\d+)\.", buffers=r"^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$"),),
    detect=gpt2_detect, reference="gpt2-small.toml",
    heads=TaskHeads("transformer.", (
        # `score`, a linear layer without bias, read at the last real token.
        TaskClass("sequence", ((
            HeadOp("pool", mode="last", masked=True),
            HeadOp("linear", (("", "score"),), activation="identity", bias=False),
        ),), "a linear layer without bias (`score`) at the last real token (pool mode last, "
             "masked → linear with bias = false)"),
        TOKEN, SPAN,
    )),
))
