"""The generic machinery of the name rules between Hugging Face `transformers` checkpoints and specc models.

Each rule names one tensor of the compiled specc model and the checkpoint
tensors it is made from. A family's rule sets live in its file under
`specc/hf/families/` (BERT's in bert.py, ...): the targets use the node names of
its reference specs in `specs/`, so a changed spec that renames a node no longer
maps, and says so. This module holds what they are built from: `Rule`, the
`Layout` of a checkpoint (the base model's prefix inside a task model, layer
counts, optional parts), the rule builders for linear layers, norms, fused and
cross attention and the BERT-style MLM head, and `KeyLayout`, which reads a
`Layout` off a checkpoint's key names (importing) — exporting builds it from the
spec's graph.
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


def copy_rule(target: str, source: str, optional: bool = False) -> Rule:
    return Rule(target, (source,), "copy", optional)


def linear(target: str, source: str, bias: bool = True, how: How = "copy") -> RuleSet:
    """Weight (and bias) of one linear layer; `how="transpose"` for a Conv1D weight."""
    rules = [Rule(f"{target}.weight", (f"{source}.weight",), how)]
    return rules + [copy_rule(f"{target}.bias", f"{source}.bias")] if bias else rules


def norm_rules(target: str, source: str, bias: bool = True) -> RuleSet:
    return linear(target, source, bias)


def fused(target: str, sources: list[str], bias: bool) -> RuleSet:
    """Separate projections (q, k, v or k, v) concatenated into one fused weight, in that order."""
    rules = [Rule(f"{target}.weight", tuple(f"{s}.weight" for s in sources), "cat")]
    return rules + [Rule(f"{target}.bias", tuple(f"{s}.bias" for s in sources), "cat")] if bias else rules


def attention(dst: str, src: str, names: tuple[str, str, str, str], bias: bool) -> RuleSet:
    """Self-attention with separate q, k, v, out projections (`names`) → fused `qkv` and `o`."""
    q, k, v, o = names
    return fused(f"{dst}.qkv", [f"{src}.{q}", f"{src}.{k}", f"{src}.{v}"], bias) + linear(f"{dst}.o", f"{src}.{o}", bias)


def cross(dst: str, src: str, names: tuple[str, str, str, str], bias: bool) -> RuleSet:
    """Cross-attention: q alone, k and v fused into `kv_proj`, then `o`."""
    q, k, v, o = names
    return (linear(f"{dst}.q", f"{src}.{q}", bias) + fused(f"{dst}.kv_proj", [f"{src}.{k}", f"{src}.{v}"], bias)
            + linear(f"{dst}.o", f"{src}.{o}", bias))


def mlm_head_rules(src: str, bias: str, dense: str = "dense", norm: str = "LayerNorm", decoder: str = "decoder") -> RuleSet:
    """A BERT-style MLM head (transform, norm, tied decoder, own bias) → the `mlm_head` node."""
    rules = [
        *linear("mlm_head.transform", f"{src}{dense}"),
        *norm_rules("mlm_head.norm", f"{src}{norm}"),
        copy_rule("mlm_head.bias", bias),
        copy_rule("mlm_head.decoder.weight", f"{src}{decoder}.weight", optional=True),  # tied to the word embedding
    ]
    if bias != f"{src}{decoder}.bias":  # BERT and RoBERTa keep a head bias that HF ties to the decoder's
        rules.append(copy_rule("mlm_head.bias", f"{src}{decoder}.bias", optional=True))
    return rules


def count_layers(keys: list[str], pattern: str) -> int:
    """1 + the largest layer index matched by `pattern` (a regex with one group), 0 if none."""
    found = [int(m.group(1)) for k in keys if (m := re.match(pattern, k))]
    return max(found) + 1 if found else 0


def wrapper_prefix(keys: list[str], prefix: str) -> str:
    """`prefix` if the checkpoint is a task model wrapping the base model under it, else ""."""
    return prefix if any(k.startswith(prefix) for k in keys) else ""


# -- reading a layout off checkpoint keys ---------------------------------------------------------
@dataclass(frozen=True)
class KeyLayout:
    """One named weight rule set of a family ("bert-mlm"): its rules for a `Layout`, how to read that `Layout`
    from key names (the wrapper prefix, layer regexes after the prefix, parts found by a marker key, parts
    always present), the checkpoint entries that are buffers rather than weights (older checkpoints save position
    ids, GPT-2's causal-mask constants, Llama's rotary frequencies: each named, none guessed), and the buffers
    the spec has no place for, accepted only when all zero (BART's `final_logits_bias`)."""

    name: str
    rules: Callable[[Layout], RuleSet]
    prefix: str = ""
    layers: str = ""
    decoder_layers: str = ""
    markers: Mapping[str, str] | None = None  # part → regex a key matches when the part is there
    fixed: frozenset[str] = frozenset()
    buffers: str = r"^$"  # regex of the buffer entries (matches none by default)
    zeros: tuple[str, ...] = ()

    def layout(self, keys: list[str]) -> Layout:
        p = wrapper_prefix(keys, self.prefix) if self.prefix else ""
        q = re.escape(p)
        parts = set(self.fixed) | {part for part, rx in (self.markers or {}).items() if any(re.match(rx, k) for k in keys)}
        layers = count_layers(keys, q + self.layers) if self.layers else 0
        decoder = count_layers(keys, q + self.decoder_layers) if self.decoder_layers else 0
        return Layout(p, layers, decoder, frozenset(parts))

    def for_keys(self, keys: list[str]) -> RuleSet:
        """The rules for a checkpoint with these key names."""
        return self.rules(self.layout(keys))

    def is_buffer(self, key: str) -> bool:
        return re.match(self.buffers, key) is not None
