"""Name rules between Hugging Face `transformers` checkpoints and the reference specs.

Each rule names one tensor of the compiled specc model and the checkpoint
tensors it is made from. The targets use the node names of the reference
specs in `specs/` (`bert-base.toml`, `roberta-base.toml`, `distilbert-base.toml`,
`gpt2-small.toml`, `t5-small.toml`, `bart-base.toml`, `smollm2-135m.toml`, and
every spec that `extends` them), so a changed spec that renames a node no
longer maps, and says so.

A rule set is built from a `Layout` (the base model's prefix inside a task
model, layer counts, optional parts). Importing reads the layout off the
checkpoint's key names; exporting builds it from the spec's graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal, Mapping

How = Literal["copy", "transpose", "cat"]


@dataclass(frozen=True)
class Rule:
    """`target` ← `sources`: copied, transposed (GPT-2's Conv1D) or concatenated on dim 0 (fused q/k/v).

    An optional rule is a tied alias (e.g. `lm_head.weight`): checkpoints that
    drop tied duplicates omit it, and when present it must equal its tie group.
    """

    target: str
    sources: tuple[str, ...]
    how: How = "copy"
    optional: bool = False


RuleSet = list[Rule]


@dataclass(frozen=True)
class Layout:
    """What a checkpoint holds: `prefix` of the base model in a task model ("bert.", "model."), layer
    counts, and optional parts ("pooler", "mlm", "nsp", "gated")."""

    prefix: str = ""
    layers: int = 0
    decoder_layers: int = 0
    parts: frozenset[str] = frozenset()


def _copy(target: str, source: str, optional: bool = False) -> Rule:
    return Rule(target, (source,), "copy", optional)


def _linear(target: str, source: str, bias: bool = True, how: How = "copy") -> RuleSet:
    """Weight (and bias) of one linear layer; `how="transpose"` for a Conv1D weight."""
    rules = [Rule(f"{target}.weight", (f"{source}.weight",), how)]
    return rules + [_copy(f"{target}.bias", f"{source}.bias")] if bias else rules


def _norm(target: str, source: str, bias: bool = True) -> RuleSet:
    return _linear(target, source, bias)


def _fused(target: str, sources: list[str], bias: bool) -> RuleSet:
    """Separate projections (q, k, v or k, v) concatenated into one fused weight, in that order."""
    rules = [Rule(f"{target}.weight", tuple(f"{s}.weight" for s in sources), "cat")]
    return rules + [Rule(f"{target}.bias", tuple(f"{s}.bias" for s in sources), "cat")] if bias else rules


def _attention(dst: str, src: str, names: tuple[str, str, str, str], bias: bool) -> RuleSet:
    """Self-attention with separate q, k, v, out projections (`names`) → fused `qkv` and `o`."""
    q, k, v, o = names
    return _fused(f"{dst}.qkv", [f"{src}.{q}", f"{src}.{k}", f"{src}.{v}"], bias) + _linear(f"{dst}.o", f"{src}.{o}", bias)


def _cross(dst: str, src: str, names: tuple[str, str, str, str], bias: bool) -> RuleSet:
    """Cross-attention: q alone, k and v fused into `kv_proj`, then `o`."""
    q, k, v, o = names
    return (_linear(f"{dst}.q", f"{src}.{q}", bias) + _fused(f"{dst}.kv_proj", [f"{src}.{k}", f"{src}.{v}"], bias)
            + _linear(f"{dst}.o", f"{src}.{o}", bias))


def _mlm_head(src: str, bias: str, dense: str = "dense", norm: str = "LayerNorm", decoder: str = "decoder") -> RuleSet:
    """A BERT-style MLM head (transform, norm, tied decoder, own bias) → the `mlm_head` node."""
    rules = [
        *_linear("mlm_head.transform", f"{src}{dense}"),
        *_norm("mlm_head.norm", f"{src}{norm}"),
        _copy("mlm_head.bias", bias),
        _copy("mlm_head.decoder.weight", f"{src}{decoder}.weight", optional=True),  # tied to the word embedding
    ]
    if bias != f"{src}{decoder}.bias":  # BERT and RoBERTa keep a head bias that HF ties to the decoder's
        rules.append(_copy("mlm_head.bias", f"{src}{decoder}.bias", optional=True))
    return rules


def count_layers(keys: list[str], pattern: str) -> int:
    """1 + the largest layer index matched by `pattern` (a regex with one group), 0 if none."""
    found = [int(m.group(1)) for k in keys if (m := re.match(pattern, k))]
    return max(found) + 1 if found else 0


def wrapper_prefix(keys: list[str], prefix: str) -> str:
    """`prefix` if the checkpoint is a task model wrapping the base model under it, else ""."""
    return prefix if any(k.startswith(prefix) for k in keys) else ""


# -- BERT, RoBERTa, DistilBERT ----------------------------------------------------------------
def _bert_encoder(lay: Layout) -> RuleSet:
    """BertModel / RobertaModel (same names) → `bert-base.toml` / `roberta-base.toml`."""
    p = lay.prefix
    rules = [
        _copy("word_embeddings.weight", f"{p}embeddings.word_embeddings.weight"),
        _copy("position_embeddings.weight", f"{p}embeddings.position_embeddings.weight"),
        _copy("token_type_embeddings.weight", f"{p}embeddings.token_type_embeddings.weight"),
        *_norm("embed_norm", f"{p}embeddings.LayerNorm"),
    ]
    if "pooler" in lay.parts:
        rules += _linear("pooler", f"{p}pooler.dense")
    for i in range(lay.layers):
        src, dst = f"{p}encoder.layer.{i}.", f"layer.{i}."
        rules += _fused(f"{dst}attention.qkv", [f"{src}attention.self.{n}" for n in ("query", "key", "value")], True)
        rules += _linear(f"{dst}attention.o", f"{src}attention.output.dense")
        rules += _norm(f"{dst}attention_norm", f"{src}attention.output.LayerNorm")
        rules += _linear(f"{dst}ffn.fc_in", f"{src}intermediate.dense")
        rules += _linear(f"{dst}ffn.fc_out", f"{src}output.dense")
        rules += _norm(f"{dst}output_norm", f"{src}output.LayerNorm")
    return rules


def bert(lay: Layout) -> RuleSet:
    """BertModel, BertForMaskedLM, BertForPreTraining (heads under `cls.`)."""
    rules = _bert_encoder(lay)
    if "mlm" in lay.parts:
        rules += _mlm_head("cls.predictions.", "cls.predictions.bias", "transform.dense", "transform.LayerNorm")
    if "nsp" in lay.parts:
        rules += _linear("nsp_head", "cls.seq_relationship")
    return rules


def roberta(lay: Layout) -> RuleSet:
    """RobertaModel, RobertaForMaskedLM (head under `lm_head.`)."""
    rules = _bert_encoder(lay)
    return rules + (_mlm_head("lm_head.", "lm_head.bias", norm="layer_norm") if "mlm" in lay.parts else [])


def distilbert(lay: Layout) -> RuleSet:
    """DistilBertModel, DistilBertForMaskedLM → `distilbert-base.toml` (BERT's node names)."""
    p = lay.prefix
    rules = [
        _copy("word_embeddings.weight", f"{p}embeddings.word_embeddings.weight"),
        _copy("position_embeddings.weight", f"{p}embeddings.position_embeddings.weight"),
        *_norm("embed_norm", f"{p}embeddings.LayerNorm"),
    ]
    for i in range(lay.layers):
        src, dst = f"{p}transformer.layer.{i}.", f"layer.{i}."
        rules += _attention(f"{dst}attention", f"{src}attention", ("q_lin", "k_lin", "v_lin", "out_lin"), True)
        rules += _norm(f"{dst}attention_norm", f"{src}sa_layer_norm")
        rules += _linear(f"{dst}ffn.fc_in", f"{src}ffn.lin1")
        rules += _linear(f"{dst}ffn.fc_out", f"{src}ffn.lin2")
        rules += _norm(f"{dst}output_norm", f"{src}output_layer_norm")
    if "mlm" in lay.parts:
        rules += _mlm_head("", "vocab_projector.bias", "vocab_transform", "vocab_layer_norm", "vocab_projector")
    return rules


# -- GPT-2 and Llama ----------------------------------------------------------------------------
def gpt2(lay: Layout) -> RuleSet:
    """GPT2LMHeadModel (or GPT2Model) → `gpt2-small.toml`. GPT-2's Conv1D stores (in, out): transpose."""
    p = lay.prefix
    rules = [
        _copy("wte.weight", f"{p}wte.weight"),
        _copy("wpe.weight", f"{p}wpe.weight"),
        *_norm("ln_f", f"{p}ln_f"),
        _copy("lm_head.weight", "lm_head.weight", optional=True),  # tied to wte unless the spec unties it
    ]
    for i in range(lay.layers):
        src, dst = f"{p}h.{i}.", f"h.{i}."
        rules += _norm(f"{dst}ln_1", f"{src}ln_1")
        rules += _linear(f"{dst}attn.qkv", f"{src}attn.c_attn", how="transpose")  # q, k, v already fused
        rules += _linear(f"{dst}attn.o", f"{src}attn.c_proj", how="transpose")
        rules += _norm(f"{dst}ln_2", f"{src}ln_2")
        rules += _linear(f"{dst}mlp.fc_in", f"{src}mlp.c_fc", how="transpose")
        rules += _linear(f"{dst}mlp.fc_out", f"{src}mlp.c_proj", how="transpose")
    return rules


def llama(lay: Layout) -> RuleSet:
    """LlamaForCausalLM (or LlamaModel) → `smollm2-135m.toml`: q/k/v fused (GQA sizes), SwiGLU gate/up/down."""
    p = lay.prefix
    bias, mlp_bias = "bias" in lay.parts, "mlp_bias" in lay.parts
    rules = [
        _copy("embed_tokens.weight", f"{p}embed_tokens.weight"),
        *_norm("norm", f"{p}norm", bias=False),
        _copy("lm_head.weight", "lm_head.weight", optional=True),  # tied to embed_tokens when the spec ties it
    ]
    for i in range(lay.layers):
        src, dst = f"{p}layers.{i}.", f"layers.{i}."
        rules += _norm(f"{dst}input_layernorm", f"{src}input_layernorm", bias=False)
        rules += _attention(f"{dst}self_attn", f"{src}self_attn", ("q_proj", "k_proj", "v_proj", "o_proj"), bias)
        rules += _norm(f"{dst}post_attention_layernorm", f"{src}post_attention_layernorm", bias=False)
        rules += _linear(f"{dst}mlp.fc_gate", f"{src}mlp.gate_proj", mlp_bias)
        rules += _linear(f"{dst}mlp.fc_in", f"{src}mlp.up_proj", mlp_bias)
        rules += _linear(f"{dst}mlp.fc_out", f"{src}mlp.down_proj", mlp_bias)
    return rules


# -- T5 and BART -------------------------------------------------------------------------------
def _t5_ffn(dst: str, src: str, gated: bool) -> RuleSet:
    """ReLU (v1.0: `wi`) or gated-GELU (v1.1: gelu(`wi_0`) * `wi_1`, our fc_gate and fc_in)."""
    if gated:
        rules = _linear(f"{dst}.fc_gate", f"{src}.wi_0", bias=False) + _linear(f"{dst}.fc_in", f"{src}.wi_1", bias=False)
    else:
        rules = _linear(f"{dst}.fc_in", f"{src}.wi", bias=False)
    return rules + _linear(f"{dst}.fc_out", f"{src}.wo", bias=False)


def t5(lay: Layout) -> RuleSet:
    """T5ForConditionalGeneration (or T5Model) → `t5-small.toml` / `t5-v1_1-small.toml`."""
    gated = "gated" in lay.parts
    rules = [
        _copy("shared.weight", "shared.weight"),
        _copy("shared.weight", "encoder.embed_tokens.weight", optional=True),
        _copy("decoder_embed.weight", "decoder.embed_tokens.weight", optional=True),
        _copy("lm_head.weight", "lm_head.weight", optional=True),  # tied in v1.0, its own in v1.1
        _copy("encoder_bias.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        _copy("decoder_bias.weight", "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        *_norm("encoder_norm", "encoder.final_layer_norm", bias=False),
        *_norm("decoder_norm", "decoder.final_layer_norm", bias=False),
    ]
    names = ("q", "k", "v", "o")
    for i in range(lay.layers):
        src, dst = f"encoder.block.{i}.layer.", f"encoder.{i}."
        rules += _norm(f"{dst}attn_norm", f"{src}0.layer_norm", bias=False)
        rules += _attention(f"{dst}attn", f"{src}0.SelfAttention", names, bias=False)
        rules += _norm(f"{dst}ff_norm", f"{src}1.layer_norm", bias=False)
        rules += _t5_ffn(f"{dst}ff", f"{src}1.DenseReluDense", gated)
    for i in range(lay.decoder_layers):
        src, dst = f"decoder.block.{i}.layer.", f"decoder.{i}."
        rules += _norm(f"{dst}self_norm", f"{src}0.layer_norm", bias=False)
        rules += _attention(f"{dst}self_attn", f"{src}0.SelfAttention", names, bias=False)
        rules += _norm(f"{dst}cross_norm", f"{src}1.layer_norm", bias=False)
        rules += _cross(f"{dst}cross_attn", f"{src}1.EncDecAttention", names, bias=False)
        rules += _norm(f"{dst}ff_norm", f"{src}2.layer_norm", bias=False)
        rules += _t5_ffn(f"{dst}ff", f"{src}2.DenseReluDense", gated)
    return rules


def bart(lay: Layout) -> RuleSet:
    """BartForConditionalGeneration (or BartModel) → `bart-base.toml`."""
    p = lay.prefix
    names = ("q_proj", "k_proj", "v_proj", "out_proj")
    rules = [
        _copy("shared.weight", f"{p}shared.weight"),
        _copy("shared.weight", f"{p}encoder.embed_tokens.weight", optional=True),
        _copy("decoder_embed.weight", f"{p}decoder.embed_tokens.weight", optional=True),
        _copy("lm_head.weight", "lm_head.weight", optional=True),
        _copy("encoder_positions.weight", f"{p}encoder.embed_positions.weight"),
        _copy("decoder_positions.weight", f"{p}decoder.embed_positions.weight"),
        *_norm("encoder_layernorm_embedding", f"{p}encoder.layernorm_embedding"),
        *_norm("decoder_layernorm_embedding", f"{p}decoder.layernorm_embedding"),
    ]
    for stack, count in (("encoder", lay.layers), ("decoder", lay.decoder_layers)):
        for i in range(count):
            src, dst = f"{p}{stack}.layers.{i}.", f"{stack}.{i}."
            rules += _attention(f"{dst}self_attn", f"{src}self_attn", names, bias=True)
            rules += _norm(f"{dst}self_attn_layer_norm", f"{src}self_attn_layer_norm")
            if stack == "decoder":
                rules += _cross(f"{dst}encoder_attn", f"{src}encoder_attn", names, bias=True)
                rules += _norm(f"{dst}encoder_attn_layer_norm", f"{src}encoder_attn_layer_norm")
            rules += _linear(f"{dst}ffn.fc_in", f"{src}fc1")
            rules += _linear(f"{dst}ffn.fc_out", f"{src}fc2")
            rules += _norm(f"{dst}final_layer_norm", f"{src}final_layer_norm")
    return rules


# -- reading a layout off checkpoint keys ---------------------------------------------------------
@dataclass(frozen=True)
class KeyLayout:
    """How to read a `Layout` from key names: the wrapper prefix, layer regexes (after the prefix),
    parts found by a marker key, and parts always present for this rule set."""

    rules: Callable[[Layout], RuleSet]
    prefix: str = ""
    layers: str = ""
    decoder_layers: str = ""
    markers: Mapping[str, str] | None = None  # part → regex a key matches when the part is there
    fixed: frozenset[str] = frozenset()

    def layout(self, keys: list[str]) -> Layout:
        p = wrapper_prefix(keys, self.prefix) if self.prefix else ""
        q = re.escape(p)
        parts = set(self.fixed) | {part for part, rx in (self.markers or {}).items() if any(re.match(rx, k) for k in keys)}
        layers = count_layers(keys, q + self.layers) if self.layers else 0
        decoder = count_layers(keys, q + self.decoder_layers) if self.decoder_layers else 0
        return Layout(p, layers, decoder, frozenset(parts))


_POOLER = {"pooler": r"^(bert\.|roberta\.)?pooler\.dense\.weight$"}
KEY_LAYOUTS: dict[str, KeyLayout] = {
    "bert": KeyLayout(bert, "bert.", r"encoder\.layer\.(\d+)\.", markers=_POOLER),
    "bert-mlm": KeyLayout(bert, "bert.", r"encoder\.layer\.(\d+)\.", markers=_POOLER, fixed=frozenset({"mlm"})),
    "bert-pretraining": KeyLayout(bert, "bert.", r"encoder\.layer\.(\d+)\.", markers=_POOLER, fixed=frozenset({"mlm", "nsp"})),
    "roberta": KeyLayout(roberta, "roberta.", r"encoder\.layer\.(\d+)\.", markers={**_POOLER, "mlm": r"^lm_head\.dense\.weight$"}),
    "distilbert": KeyLayout(distilbert, "distilbert.", r"transformer\.layer\.(\d+)\.",
                            markers={"mlm": r"^vocab_transform\.weight$"}),
    "gpt2": KeyLayout(gpt2, "transformer.", r"h\.(\d+)\."),
    "llama": KeyLayout(llama, "model.", r"layers\.(\d+)\.", markers={
        "bias": r"^(model\.)?layers\.\d+\.self_attn\.q_proj\.bias$", "mlp_bias": r"^(model\.)?layers\.\d+\.mlp\.up_proj\.bias$"}),
    "t5": KeyLayout(t5, "", r"encoder\.block\.(\d+)\.", r"decoder\.block\.(\d+)\.",
                    markers={"gated": r"^(en|de)coder\.block\.\d+\.layer\.\d\.DenseReluDense\.wi_0\.weight$"}),
    "bart": KeyLayout(bart, "model.", r"encoder\.layers\.(\d+)\.", r"decoder\.layers\.(\d+)\."),
}


def _from_keys(arch: str) -> Callable[[list[str]], RuleSet]:
    spec = KEY_LAYOUTS[arch]
    return lambda keys: spec.rules(spec.layout(keys))


# Rule set name → rules for a checkpoint's key names.
ARCHITECTURES: dict[str, Callable[[list[str]], RuleSet]] = {name: _from_keys(name) for name in KEY_LAYOUTS}

# Checkpoint entries that are buffers, not weights (older checkpoints save them):
# position ids, GPT-2's causal-mask constants, Llama's rotary frequencies. Each is
# named, none is guessed.
_BERT_BUFFERS = re.compile(r"^(bert\.|roberta\.)?embeddings\.(position_ids|token_type_ids)$")
BUFFERS: dict[str, re.Pattern[str]] = {
    "bert": _BERT_BUFFERS,
    "bert-mlm": _BERT_BUFFERS,
    "bert-pretraining": _BERT_BUFFERS,
    "roberta": _BERT_BUFFERS,
    "distilbert": re.compile(r"^(distilbert\.)?embeddings\.position_ids$"),
    "gpt2": re.compile(r"^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$"),
    "llama": re.compile(r"^(model\.)?(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq$"),
    "t5": re.compile(r"^$"),
    "bart": re.compile(r"^$"),
}

# Buffers that hold values the spec has no place for, accepted only when all zero.
ZERO_BUFFERS: dict[str, tuple[str, ...]] = {"bart": ("final_logits_bias",)}


def detect_architecture(keys: Mapping[str, object] | list[str]) -> str:
    """Which rule set fits a checkpoint, from its tensor names; ValueError if none does."""
    names = list(keys)
    if "cls.predictions.bias" in names:
        return "bert-pretraining"  # a BertForMaskedLM checkpoint is named with arch="bert-mlm"
    if any(k.startswith("roberta.") for k in names) or "lm_head.dense.weight" in names:
        return "roberta"
    if any(k.endswith("attention.self.query.weight") for k in names):
        return "bert"
    if any(k.endswith("attention.q_lin.weight") for k in names):
        return "distilbert"
    if any(k.endswith("attn.c_attn.weight") for k in names):
        return "gpt2"
    if any("EncDecAttention" in k for k in names):
        return "t5"
    if any(k.endswith("encoder_attn.k_proj.weight") for k in names):
        return "bart"
    if any(k.endswith("mlp.gate_proj.weight") for k in names):
        return "llama"
    raise ValueError(f"cannot tell the architecture of a checkpoint with keys like {names[:3]}; "
                     f"name one of: {', '.join(ARCHITECTURES)}")
