"""Hugging Face `transformers` state dicts ↔ compiled specc models.

`convert_state_dict` renames, transposes (GPT-2's Conv1D) and fuses (q/k/v
into `qkv`, k/v into a cross-attention's `kv_proj`) the tensors of a
`transformers` state dict (BERT, RoBERTa, DistilBERT, GPT-2, Llama, T5, BART)
into the state dict of a model compiled from the matching reference spec.
Nothing is dropped silently: checkpoint tensors that no rule reads, model
tensors that nothing fills, shape mismatches and tied tensors that disagree
are all collected into one `WeightMapError`. `export_state_dict` runs the same
rules backwards.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn

from specc.hf.families import ARCHITECTURES, KEY_LAYOUTS, detect_architecture
from specc.hf.rules import Rule
from specc.ops.attention import Attention

StateDict = Mapping[str, torch.Tensor]
_SHOW = 12  # names listed per problem kind before "... and N more"


@dataclass
class MapProblems:
    """Everything that keeps a checkpoint from mapping onto a model, by kind."""

    unmapped: list[str] = field(default_factory=list)  # checkpoint tensors no rule reads
    missing_sources: list[str] = field(default_factory=list)  # checkpoint tensors a rule needs
    missing_targets: list[str] = field(default_factory=list)  # model tensors nothing fills
    unexpected_targets: list[str] = field(default_factory=list)  # rule targets the model lacks
    mismatched: list[str] = field(default_factory=list)  # shape differences
    conflicts: list[str] = field(default_factory=list)  # tied tensors with different values
    unsupported: list[str] = field(default_factory=list)  # buffers with values the spec has no place for

    def __bool__(self) -> bool:
        return any(getattr(self, k) for k in self.__dataclass_fields__)

    def lines(self) -> list[str]:
        titles = {
            "unmapped": "checkpoint tensors with no place in the model",
            "missing_sources": "checkpoint tensors the mapping needs but the checkpoint lacks",
            "missing_targets": "model tensors the checkpoint does not fill",
            "unexpected_targets": "mapped tensors the model does not have (a renamed node, or a different layer count?)",
            "mismatched": "shape mismatches",
            "conflicts": "tensors the spec ties but the checkpoint does not",
            "unsupported": "checkpoint values the model cannot hold",
        }
        out: list[str] = []
        for key, title in titles.items():
            names: list[str] = getattr(self, key)
            if names:
                out.append(f"{title} ({len(names)}):")
                out += [f"  {n}" for n in names[:_SHOW]]
                if len(names) > _SHOW:
                    out.append(f"  ... and {len(names) - _SHOW} more")
        return out


class WeightMapError(ValueError):
    """A checkpoint does not map onto a model; `problems` lists every offending tensor by name."""

    def __init__(self, arch: str, problems: MapProblems):
        super().__init__(f"cannot map the '{arch}' checkpoint onto this model:\n" + "\n".join(problems.lines()))
        self.arch, self.problems = arch, problems


def convert_state_dict(
    hf_state: StateDict, model: nn.Module, arch: str | None = None, skip: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """A state dict for `model` (every key, tied aliases included) made from a `transformers` one.

    `arch` is one of `ARCHITECTURES` (detected from the key names when None);
    `skip` lists checkpoint key prefixes to leave out on purpose (e.g. ``"cls."``
    to load a pretraining checkpoint into a bare encoder). Raises `WeightMapError`.
    """
    arch = arch or detect_architecture(list(hf_state))
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{arch}'; known: {', '.join(ARCHITECTURES)}")
    problems = MapProblems()
    produced, used = _apply_rules(ARCHITECTURES[arch](list(hf_state)), hf_state, problems)
    prefixes = tuple(skip)
    zero = KEY_LAYOUTS[arch].zeros
    problems.unmapped = [k for k in hf_state if k not in used and k not in zero and not KEY_LAYOUTS[arch].is_buffer(k)
                         and not k.startswith(prefixes)]
    problems.unsupported = [f"{k} is not all zeros" for k in zero if k in hf_state and bool(hf_state[k].detach().any())]
    out = _fill_targets(produced, model, problems)
    if problems:
        raise WeightMapError(arch, problems)
    return out


def load_hf_state_dict(model: nn.Module, hf_state: StateDict, arch: str | None = None, skip: Iterable[str] = ()) -> None:
    """Copy a `transformers` state dict into `model` in place (strictly; see `convert_state_dict`)."""
    model.load_state_dict(convert_state_dict(hf_state, model, arch, skip), strict=True)


def _apply_rules(rules: list[Rule], hf_state: StateDict, problems: MapProblems
                 ) -> tuple[dict[str, list[tuple[str, torch.Tensor]]], set[str]]:
    """Target name → [(source description, tensor)], and the checkpoint keys read."""
    produced: dict[str, list[tuple[str, torch.Tensor]]] = defaultdict(list)
    used: set[str] = set()
    for rule in rules:
        absent = [s for s in rule.sources if s not in hf_state]
        if absent:
            if not (rule.optional and len(absent) == len(rule.sources)):
                problems.missing_sources += [f"{s} (for {rule.target})" for s in absent]
            continue
        used.update(rule.sources)
        produced[rule.target].append((" + ".join(rule.sources), _make(rule, hf_state)))
    return produced, used


def _make(rule: Rule, hf_state: StateDict) -> torch.Tensor:
    tensors = [hf_state[s].detach() for s in rule.sources]
    if rule.how == "transpose":
        return tensors[0].t().contiguous()
    if rule.how == "cat":
        return torch.cat(tensors, dim=0)
    return tensors[0]


def _tie_groups(model: nn.Module) -> list[list[str]]:
    """State-dict names grouped by the tensor they share (one name per group when nothing is tied)."""
    groups: dict[int, list[str]] = defaultdict(list)
    named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
    for name, tensor in named:
        groups[id(tensor)].append(name)
    keys = set(model.state_dict())
    return [[n for n in names if n in keys] for names in groups.values() if any(n in keys for n in names)]


def _fill_targets(produced: dict[str, list[tuple[str, torch.Tensor]]], model: nn.Module, problems: MapProblems
                  ) -> dict[str, torch.Tensor]:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems.unexpected_targets = [f"{t} (from {produced[t][0][0]})" for t in produced if t not in expected]
    out: dict[str, torch.Tensor] = {}
    for group in _tie_groups(model):
        candidates = [(f"{src} → {name}", t) for name in group for src, t in produced.get(name, [])]
        if not candidates:
            problems.missing_targets.append(" = ".join(group))
            continue
        first_src, value = candidates[0]
        if tuple(value.shape) != expected[group[0]]:
            problems.mismatched.append(f"{first_src}: checkpoint {list(value.shape)}, model {list(expected[group[0]])}")
            continue
        for src, other in candidates[1:]:
            if other.shape != value.shape or not torch.equal(other, value):
                problems.conflicts.append(f"{src} differs from {first_src}")
        for name in group:
            out[name] = value
    return out


def export_state_dict(model: nn.Module, rules: list[Rule]) -> dict[str, torch.Tensor]:
    """The `transformers` state dict that `rules` read `model`'s weights from: each rule run backwards.

    Tied aliases (optional rules) are written only when the spec does not tie
    them, as `save_pretrained` leaves tied duplicates out. Fused projections are
    split by the attention module's head sizes. Tensors are contiguous copies.
    """
    state = model.state_dict()
    groups = {name: tuple(group) for group in _tie_groups(model) for name in group}
    required = {t for r in rules if not r.optional for t in groups.get(r.target, (r.target,))}
    out: dict[str, torch.Tensor] = {}
    for rule in rules:
        if rule.optional and (rule.target in required or rule.target not in state):
            continue  # a tied duplicate, or a head this model does not have
        value = state[rule.target].detach()
        if rule.how == "transpose":
            parts = [value.t()]
        elif rule.how == "cat":
            parts = list(value.split(_split_sizes(model, rule), dim=0))
        else:
            parts = [value]
        for source, part in zip(rule.sources, parts):
            out[source] = part.contiguous().clone()
    return out


def _split_sizes(model: nn.Module, rule: Rule) -> list[int]:
    """Row counts of the projections fused into an attention node's `qkv` or `kv_proj`."""
    module = model.get_submodule(rule.target.rsplit(".", 2)[0])
    assert isinstance(module, Attention), f"fused target {rule.target} is not an attention projection"
    q, kv = module.h * module.hd, module.kv * module.hd
    return [q, kv, kv] if len(rule.sources) == 3 else [kv, kv]
