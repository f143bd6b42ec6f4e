"""Name rules from Hugging Face `transformers` checkpoints to the reference specs.

Each rule names one tensor of the compiled specc model and the checkpoint
tensors it is made from. The targets use the node names of the reference
specs in `specs/` (`bert-base.toml`, `bert-base-pretraining.toml`,
`gpt2-small.toml`, `t5-small.toml`) and of every spec that `extends` them, so
a changed spec that renames a node no longer maps, and says so.
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


def count_layers(keys: list[str], pattern: str) -> int:
    """1 + the largest layer index matched by `pattern` (a regex with one group), 0 if none."""
    found = [int(m.group(1)) for k in keys if (m := re.match(pattern, k))]
    return max(found) + 1 if found else 0


def wrapper_prefix(keys: list[str], prefix: str) -> str:
    """`prefix` if the checkpoint is a task model wrapping the base model under it, else ""."""
    return prefix if any(k.startswith(prefix) for k in keys) else ""


# -- BERT -------------------------------------------------------------------------
def bert_rules(keys: list[str]) -> RuleSet:
    """BertModel (keys with or without the `bert.` prefix) → `bert-base.toml`."""
    p = wrapper_prefix(keys, "bert.")
    rules = [
        _copy("word_embeddings.weight", f"{p}embeddings.word_embeddings.weight"),
        _copy("position_embeddings.weight", f"{p}embeddings.position_embeddings.weight"),
        _copy("token_type_embeddings.weight", f"{p}embeddings.token_type_embeddings.weight"),
        *_norm("embed_norm", f"{p}embeddings.LayerNorm"),
        *_linear("pooler", f"{p}pooler.dense"),
    ]
    for i in range(count_layers(keys, rf"{re.escape(p)}encoder\.layer\.(\d+)\.")):
        src, dst = f"{p}encoder.layer.{i}.", f"layer.{i}."
        rules += _fused(f"{dst}attention.qkv", [f"{src}attention.self.{n}" for n in ("query", "key", "value")], True)
        rules += _linear(f"{dst}attention.o", f"{src}attention.output.dense")
        rules += _norm(f"{dst}attention_norm", f"{src}attention.output.LayerNorm")
        rules += _linear(f"{dst}ffn.fc_in", f"{src}intermediate.dense")
        rules += _linear(f"{dst}ffn.fc_out", f"{src}output.dense")
        rules += _norm(f"{dst}output_norm", f"{src}output.LayerNorm")
    return rules


def bert_pretraining_rules(keys: list[str]) -> RuleSet:
    """BertForPreTraining → `bert-base-pretraining.toml` (MLM decoder tied, NSP linear)."""
    return bert_rules(keys) + [
        *_linear("mlm_head.transform", "cls.predictions.transform.dense"),
        *_norm("mlm_head.norm", "cls.predictions.transform.LayerNorm"),
        _copy("mlm_head.bias", "cls.predictions.bias"),
        _copy("mlm_head.bias", "cls.predictions.decoder.bias", optional=True),  # HF ties it to the bias above
        _copy("mlm_head.decoder.weight", "cls.predictions.decoder.weight", optional=True),  # tied to the word embedding
        *_linear("nsp_head", "cls.seq_relationship"),
    ]


# -- GPT-2 ------------------------------------------------------------------------
def gpt2_rules(keys: list[str]) -> RuleSet:
    """GPT2LMHeadModel (or GPT2Model) → `gpt2-small.toml`. GPT-2's Conv1D stores (in, out): transpose."""
    p = wrapper_prefix(keys, "transformer.")
    rules = [
        _copy("wte.weight", f"{p}wte.weight"),
        _copy("wpe.weight", f"{p}wpe.weight"),
        *_norm("ln_f", f"{p}ln_f"),
        _copy("lm_head.weight", "lm_head.weight", optional=True),  # tied to wte
    ]
    for i in range(count_layers(keys, rf"{re.escape(p)}h\.(\d+)\.")):
        src, dst = f"{p}h.{i}.", f"h.{i}."
        rules += _norm(f"{dst}ln_1", f"{src}ln_1")
        rules += _linear(f"{dst}attn.qkv", f"{src}attn.c_attn", how="transpose")  # q, k, v already fused
        rules += _linear(f"{dst}attn.o", f"{src}attn.c_proj", how="transpose")
        rules += _norm(f"{dst}ln_2", f"{src}ln_2")
        rules += _linear(f"{dst}mlp.fc_in", f"{src}mlp.c_fc", how="transpose")
        rules += _linear(f"{dst}mlp.fc_out", f"{src}mlp.c_proj", how="transpose")
    return rules


# -- T5 ---------------------------------------------------------------------------
def _t5_ffn(dst: str, src: str, keys: set[str]) -> RuleSet:
    """ReLU (v1.0: `wi`) or gated-GELU (v1.1: gelu(`wi_0`) * `wi_1`, our fc_gate and fc_in)."""
    if f"{src}.wi_0.weight" in keys:
        rules = _linear(f"{dst}.fc_gate", f"{src}.wi_0", bias=False) + _linear(f"{dst}.fc_in", f"{src}.wi_1", bias=False)
    else:
        rules = _linear(f"{dst}.fc_in", f"{src}.wi", bias=False)
    return rules + _linear(f"{dst}.fc_out", f"{src}.wo", bias=False)


def t5_rules(keys: list[str]) -> RuleSet:
    """T5ForConditionalGeneration → `t5-small.toml` (shared embedding, decoder embedding and head tied)."""
    present = set(keys)
    rules = [
        _copy("shared.weight", "shared.weight"),
        _copy("shared.weight", "encoder.embed_tokens.weight", optional=True),
        _copy("decoder_embed.weight", "decoder.embed_tokens.weight", optional=True),
        _copy("lm_head.weight", "lm_head.weight", optional=True),
        _copy("encoder_bias.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        _copy("decoder_bias.weight", "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        *_norm("encoder_norm", "encoder.final_layer_norm", bias=False),
        *_norm("decoder_norm", "decoder.final_layer_norm", bias=False),
    ]
    for i in range(count_layers(keys, r"encoder\.block\.(\d+)\.")):
        src, dst = f"encoder.block.{i}.layer.", f"encoder.{i}."
        rules += _norm(f"{dst}attn_norm", f"{src}0.layer_norm", bias=False)
        rules += _fused(f"{dst}attn.qkv", [f"{src}0.SelfAttention.{n}" for n in "qkv"], bias=False)
        rules += _linear(f"{dst}attn.o", f"{src}0.SelfAttention.o", bias=False)
        rules += _norm(f"{dst}ff_norm", f"{src}1.layer_norm", bias=False)
        rules += _t5_ffn(f"{dst}ff", f"{src}1.DenseReluDense", present)
    for i in range(count_layers(keys, r"decoder\.block\.(\d+)\.")):
        src, dst = f"decoder.block.{i}.layer.", f"decoder.{i}."
        rules += _norm(f"{dst}self_norm", f"{src}0.layer_norm", bias=False)
        rules += _fused(f"{dst}self_attn.qkv", [f"{src}0.SelfAttention.{n}" for n in "qkv"], bias=False)
        rules += _linear(f"{dst}self_attn.o", f"{src}0.SelfAttention.o", bias=False)
        rules += _norm(f"{dst}cross_norm", f"{src}1.layer_norm", bias=False)
        rules += _linear(f"{dst}cross_attn.q", f"{src}1.EncDecAttention.q", bias=False)
        rules += _fused(f"{dst}cross_attn.kv_proj", [f"{src}1.EncDecAttention.{n}" for n in "kv"], bias=False)
        rules += _linear(f"{dst}cross_attn.o", f"{src}1.EncDecAttention.o", bias=False)
        rules += _norm(f"{dst}ff_norm", f"{src}2.layer_norm", bias=False)
        rules += _t5_ffn(f"{dst}ff", f"{src}2.DenseReluDense", present)
    return rules


ARCHITECTURES: dict[str, Callable[[list[str]], RuleSet]] = {
    "bert": bert_rules,
    "bert-pretraining": bert_pretraining_rules,
    "gpt2": gpt2_rules,
    "t5": t5_rules,
}

# Checkpoint entries that are buffers, not weights (older checkpoints save them):
# position ids and GPT-2's causal-mask constants. Each is named, none is guessed.
BUFFERS: dict[str, re.Pattern[str]] = {
    "bert": re.compile(r"^(bert\.)?embeddings\.(position_ids|token_type_ids)$"),
    "bert-pretraining": re.compile(r"^(bert\.)?embeddings\.(position_ids|token_type_ids)$"),
    "gpt2": re.compile(r"^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$"),
    "t5": re.compile(r"^$"),
}


def detect_architecture(keys: Mapping[str, object] | list[str]) -> str:
    """Which rule set fits a checkpoint, from its tensor names; ValueError if none does."""
    names = list(keys)
    if "cls.predictions.bias" in names:
        return "bert-pretraining"
    if any(k.endswith("attention.self.query.weight") for k in names):
        return "bert"
    if any(k.endswith("attn.c_attn.weight") for k in names):
        return "gpt2"
    if any("EncDecAttention" in k for k in names):
        return "t5"
    raise ValueError(f"cannot tell the architecture of a checkpoint with keys like {names[:3]}; "
                     f"name one of: {', '.join(ARCHITECTURES)}")
