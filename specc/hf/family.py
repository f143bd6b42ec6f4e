"""The family registry: one record per Hugging Face `model_type` specc can read and write.

A `Family` is everything specc knows of one `model_type`, declared in its one
file under `specc/hf/families/`: its `transformers` classes (which reference
spec each starts from, which weight rule set it uses), how a config becomes a
spec tree (`to_spec`, reading every field through a `ConfigReader` so none is
ignored silently), how a compiled graph becomes a config again (`to_config`),
its weight rule sets (tensor names, buffers, the layout read off key names),
how to recognise its checkpoints by key names (`detect`), the shipped spec
an export refusal compares with (`reference`), and the task classes a
fine-tuned run's head is exported as (`heads`, see `specc.hf.headlayout`). Adding a family is one file plus
its name on the import line of `specc/hf/families/__init__.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from specc.diagnostics import UserError
from specc.graph import LayerGraph
from specc.hf.headlayout import TaskHeads
from specc.hf.rules import KeyLayout, Layout
from specc.hf.spectree import SpecTree
from specc.ops.base import OpParams
from specc.registry import Registry, RegistryError

Weights = Mapping[str, torch.Tensor]

# `transformers` activation names → specc's. "gelu_new" and "gelu_pytorch_tanh" are both GELU's tanh
# approximation; specc keeps them apart because they round differently (see specc/ops/layers.py).
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu",
               "silu": "silu", "swish": "silu"}
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu",
                  "silu": "silu"}

# Fields every config may carry that do not change the architecture, with the reason they do not.
_BOOKKEEPING = "bookkeeping"
_RUNTIME = "a runtime switch, not the architecture"
_TASK = "a task head or label setting; the spec keeps the base model and LM head only"
_TOKENS = "token ids and generation settings, kept with the tokenizer, not the architecture"
GENERIC_IGNORED: dict[str, str] = {
    **dict.fromkeys(["_name_or_path", "transformers_version", "_commit_hash", "torch_dtype", "dtype"], _BOOKKEEPING),
    **dict.fromkeys(["use_cache", "output_attentions", "output_hidden_states", "return_dict", "torchscript",
                     "use_return_dict", "output_past", "gradient_checkpointing", "_attn_implementation",
                     "attn_implementation", "use_bfloat16", "tf_legacy_loss", "xla_device",
                     "chunk_size_feed_forward"], _RUNTIME),
    **dict.fromkeys(["id2label", "label2id", "num_labels", "problem_type", "finetuning_task", "classifier_dropout",
                     "task_specific_params"], _TASK),
    **dict.fromkeys(["bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
                     "forced_bos_token_id", "forced_eos_token_id", "tokenizer_class", "prefix", "max_length",
                     "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty",
                     "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty",
                     "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences",
                     "output_scores", "return_dict_in_generate", "remove_invalid_values",
                     "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens"], _TOKENS),
}
# Fields that would change the architecture in ways specc does not build: the values it accepts.
GENERIC_VALUES: dict[str, tuple[Any, ...]] = {
    "pruned_heads": ({},), "add_cross_attention": (False,), "tie_encoder_decoder": (False,),
    "cross_attention_hidden_size": (None,), "is_decoder": (False,),
}


class HFImportError(UserError):
    """A config specc cannot turn into a spec; the message names every field at fault."""

    def __init__(self, what: str, problems: list[str]):
        super().__init__(f"cannot import {what}:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class NotRepresentable(UserError):
    """A spec that no `transformers` class of a family can hold (the message says why)."""


_MISSING = object()


class ConfigReader:
    """Reads a config field by field; every field ends up used, ignored for a stated reason, or reported."""

    def __init__(self, config: Mapping[str, Any], what: str, allow_unknown: tuple[str, ...] = ()):
        self.config, self.what, self.allow_unknown = dict(config), what, allow_unknown
        self.used: set[str] = {"model_type", "architectures"}
        self.ignored: dict[str, str] = {}
        self.problems: list[str] = []

    def __contains__(self, key: str) -> bool:
        return key in self.config

    def take(self, key: str, default: Any = _MISSING, kind: type | tuple[type, ...] | None = None) -> Any:
        """The value of `key` (or `default`); a missing required field or a wrong type is reported."""
        self.used.add(key)
        if key not in self.config or (self.config[key] is None and default is not _MISSING):
            if default is _MISSING:
                self.problems.append(f"missing field '{key}'")
            return None if default is _MISSING else default
        value = self.config[key]
        if kind is not None and (not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind))):
            names = "/".join(k.__name__ for k in _tuple(kind))
            self.problems.append(f"field '{key}' = {value!r} should be {names}")
            return None if default is _MISSING else default
        return value

    def int(self, key: str, default: Any = _MISSING) -> Any:
        return self.take(key, default, int)

    def float(self, key: str, default: Any = _MISSING) -> Any:
        value = self.take(key, default, (int, float))
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    def expect(self, key: str, allowed: tuple[Any, ...], default: Any, why: str = "") -> Any:
        """`key`'s value, reported unless it is one of `allowed`."""
        value = self.take(key, default)
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            self.problems.append(f"field '{key}' = {value!r} is not supported (specc builds {shown}){': ' + why if why else ''}")
        return value

    def activation(self, key: str, default: Any = _MISSING) -> str:
        value = self.take(key, default, str)
        if value is not None and value not in ACTIVATIONS:
            self.problems.append(f"field '{key}' = {value!r} is not supported (specc builds {', '.join(sorted(ACTIVATIONS))})")
        return ACTIVATIONS.get(value, "gelu")

    def ignore(self, why: str, *keys: str) -> None:
        for key in keys:
            if key in self.config and key not in self.used:
                self.ignored[key] = why

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def finish(self) -> None:
        """Account for the remaining fields; raise `HFImportError` listing every problem."""
        for key, value in self.config.items():
            if key in self.used or key in self.ignored:
                continue
            if key in GENERIC_VALUES:
                if value not in GENERIC_VALUES[key]:
                    self.problems.append(f"field '{key}' = {value!r} is not supported (specc builds "
                                         f"{', '.join(repr(a) for a in GENERIC_VALUES[key])})")
                self.used.add(key)
            elif key in GENERIC_IGNORED:
                self.ignored[key] = GENERIC_IGNORED[key]
            elif key in self.allow_unknown:
                self.ignored[key] = "unknown to specc; ignored on request (--allow-unknown)"
            else:
                self.problems.append(f"unknown config field '{key}' = {_short(value)} "
                                     f"(pass --allow-unknown {key} if it does not change the architecture)")
        if self.problems:
            raise HFImportError(self.what, self.problems)


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class HFClass:
    """One `transformers` class: the reference spec it starts from and how it differs from it."""

    name: str  # "BertForMaskedLM"
    template: str  # reference spec in specs/
    arch: str  # the name of one of its family's weight rule sets (`Family.rule_sets`)
    prefix: str = ""  # the base model's prefix in this class's state dict ("bert.")
    drop: tuple[str, ...] = ()  # template nodes this class does not have
    outputs: tuple[tuple[str, str], ...] = ()  # outputs it adds: (name, node)
    zeros: tuple[str, ...] = ()  # (1, vocab) buffers it keeps at zero: BART's final_logits_bias


@dataclass(frozen=True)
class Family:
    model_type: str
    classes: tuple[HFClass, ...]
    to_spec: Callable[[ConfigReader, HFClass, Weights | None], SpecTree]
    to_config: Callable[[GraphView], tuple[str, dict[str, Any]]]  # → (class name, config fields)
    layout: Callable[[GraphView, HFClass], Layout]  # what the exported state dict holds
    rule_sets: tuple[KeyLayout, ...]  # its weight rule sets, by name (every `HFClass.arch` is one)
    detect: Callable[[list[str]], str | None]  # the rule set a checkpoint's key names are, if this family's
    reference: str  # a shipped spec, to measure how far a graph no family takes is from this family
    heads: TaskHeads | None = None  # its task classes for fine-tuned heads; None: export-hf writes none

    @property
    def name(self) -> str:  # its name in the registry
        return self.model_type

    @property
    def stem(self) -> str:  # "Bert": its base model class (listed first) is `<stem>Model`, task classes `<stem>For...`
        return self.classes[0].name.removesuffix("Model")

    def __post_init__(self) -> None:
        if not self.classes[0].name.endswith("Model"):  # `stem` names the task classes from it
            raise RegistryError(f"HF family '{self.model_type}': its first class should be the base model (<stem>Model), "
                                f"not {self.classes[0].name}")
        named = {r.name for r in self.rule_sets}
        lost = [c.arch for c in self.classes if c.arch not in named]
        if lost:  # a class naming a rule set its family lacks: fail at import, not at the first conversion
            raise RegistryError(f"HF family '{self.model_type}': no rule set {', '.join(lost)} in its rule_sets")

    def cls(self, name: str) -> HFClass | None:
        return next((c for c in self.classes if c.name == name), None)

    def start(self, cls: HFClass, template: str | None = None) -> SpecTree:
        """The class's reference spec (or `template`, a variant) with the nodes it lacks dropped and its outputs added."""
        tree = SpecTree.load(template or cls.template)
        if cls.drop:
            tree.drop_nodes(*cls.drop)
        for name, node in cls.outputs:
            tree.add_output(name, node)
        return tree


FAMILIES: Registry[Family] = Registry("HF family")
register = FAMILIES.register


# -- graph side (export) ----------------------------------------------------------------------
@dataclass
class GraphView:
    """Named access to a compiled graph's nodes for `to_config`; absent nodes raise `NotRepresentable`."""

    graph: LayerGraph

    def has(self, name: str) -> bool:
        return name in self.graph.nodes

    def op(self, name: str, op: str) -> Any:
        node = self.graph.nodes.get(name)
        if node is None or node.op != op:
            found = f"a '{node.op}' node" if node else "no such node"
            raise NotRepresentable(f"expected a '{op}' node '{name}', found {found}")
        params: OpParams = node.params
        return params

    def count(self, group: str) -> int:
        """How many times block node `group` repeats (0 when it is not a repeated block)."""
        found = next((g for g in self.graph.groups if g.name == group and g.kind == "repeat"), None)
        if found is None:
            raise NotRepresentable(f"expected a repeated block '{group}'")
        return len(found.instances)

    def tied(self, name: str, param: str = "weight") -> str | None:
        node = self.graph.nodes.get(name)
        return node.ties.get(param) if node else None

    def spec_param(self, name: str, default: Any = None) -> Any:
        return self.graph.spec.params.get(name, default)


def hf_activation(name: str) -> str:
    """The `transformers` name of an ungated specc activation."""
    if name not in HF_ACTIVATIONS:
        raise NotRepresentable(f"activation '{name}' has no transformers equivalent in this family")
    return HF_ACTIVATIONS[name]


def mlm_head(tree: SpecTree, activation: str, tied: bool) -> None:
    """An MLM head (if the tree has one) with the encoder's activation, its decoder tied or not."""
    if "mlm_head" not in tree.data["model"]["nodes"]:
        return
    tree.set("model", "mlm_head", activation=activation)  # HF's head transform uses the encoder's activation
    if not tied:
        tree.unset("model", "mlm_head", "tie")


def dropout_param(tree: SpecTree, shared: str, name: str, value: float, sites: list[tuple[str, str, str]]) -> None:
    """Param `shared` stays for most dropouts; `sites` (block or "model", node, key) get their own param
    `name` when `value` differs from it."""
    if float(tree.resolve().params[shared]) == value:
        return
    tree.set_params({name: value})
    for where, node, key in sites:
        tree.set(where, node, **{key: name})
