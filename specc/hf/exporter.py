"""Compiled spec → Hugging Face directory (`config.json`, `model.safetensors`, tokenizer files).

A family writes the config (`Family.to_config`); the config is then imported
back and its graph compared with the spec's, node by node (ops, sizes, flags,
inputs, ties; initialisation and dropout rates aside). Only a spec that comes
back identical is exported, so `transformers` builds exactly the spec's model.
Anything else is `NotRepresentable`, naming for each family what differs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Sequence

import torch
from torch import nn

from specc.graph import LayerGraph
from specc.graph.subgraph import subgraph
from specc.hf.families import FAMILIES, KEY_LAYOUTS
from specc.hf.family import Family, GraphView, HFClass, HFImportError, NotRepresentable
from specc.hf.files import write_weights
from specc.hf.importer import spec_from_config
from specc.hf.tokenizer import HFTokenizer
from specc.hf.weights import export_state_dict

# Node fields that do not change what a trained model computes.
_NOT_COMPARED = {"init_std", "out_init_std", "dropout", "p"}
_TOKEN_FIELDS = {"pad": "pad_token_id", "bos": "bos_token_id", "eos": "eos_token_id"}


@dataclass
class Exported:
    family: Family
    hf_class: HFClass
    config: dict[str, Any]
    state: dict[str, torch.Tensor]


def export_model(graph: LayerGraph, model: nn.Module, outputs: Sequence[str] | None = None) -> Exported:
    """The `transformers` config and state dict of a compiled spec; `NotRepresentable` if no class holds it.
    With `outputs`, only what they read must match (see `match_family`)."""
    family, cls, config = match_family(graph, outputs)
    state = export_state_dict(model, KEY_LAYOUTS[cls.arch].rules(family.layout(GraphView(graph), cls)))
    for name in cls.zeros:
        state[name] = torch.zeros(1, config["vocab_size"])
    return Exported(family, cls, config, state)


def match_family(graph: LayerGraph, outputs: Sequence[str] | None = None) -> tuple[Family, HFClass, dict[str, Any]]:
    """The family, class and config that rebuild `graph` exactly; `NotRepresentable` if none does.

    With `outputs`, only what those graph outputs read is compared: the config's graph is cut to the
    same outputs (a fine-tuned run's encoder, without the pretraining heads it no longer has)."""
    view, near, refused = GraphView(graph), [], []
    for family in FAMILIES.values():
        try:
            cls_name, config = family.to_config(view)
            config = {"architectures": [cls_name], **config}
            back = spec_from_config(config).graph
            if outputs is not None:
                if not set(outputs) <= set(back.outputs):
                    raise NotRepresentable(f"its {cls_name} has no output {', '.join(sorted(set(outputs) - set(back.outputs)))}")
                back = subgraph(back, list(outputs))
        except (NotRepresentable, HFImportError) as err:
            refused.append(f"{family.model_type}: {err}")
            continue
        diff = architecture_differences(signature(graph), signature(back), family.model_type)
        if diff:
            near.append((len(diff), family.model_type, cls_name, diff))
            continue
        cls = family.cls(cls_name)
        assert cls is not None, f"{family.model_type} wrote an unknown class {cls_name}"
        return family, cls, config
    if not near:  # no family's config reader took it: compare with each family's shipped spec instead
        _refuse_by_reference(graph, refused)
    raise NotRepresentable(refusal(near, refused))


def _refuse_by_reference(graph: LayerGraph, refused: list[str]) -> NoReturn:
    ranked = sorted(nearest_by_reference(graph))
    if not ranked:
        raise NotRepresentable(refusal([], refused))
    _, family, name, diff = ranked[0]
    others = [f"{t} ({n}): {len(d)} differences" for _, t, n, d in ranked[1:]]
    raise NotRepresentable(refusal([(len(diff), family, f"as in the shipped {name}", diff)], others))


def nearest_by_reference(graph: LayerGraph) -> list[tuple[int, str, str, list[str]]]:
    """(differences, family, its reference spec, the differences) against each family's shipped spec, comparing
    ops and their settings (choices and flags, not sizes), so that node names do not count."""
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate
    from specc.frontend.bases import shipped_specs

    root = shipped_specs()
    if root is None:
        return []
    ours = _settings(signature(graph))
    out = []
    for family in FAMILIES.values():  # each family's `reference`: a shipped spec of it
        if (root / family.reference).exists():
            reference = build_graph(validate(parse(root / family.reference)))
            diff = architecture_differences(ours, _settings(signature(reference)), family.model_type)
            out.append((len(diff), family.model_type, family.reference, diff))
    return out


def _settings(sig: dict[str, Any]) -> dict[str, Any]:
    """A signature with only the settings that are no size (choices, flags; whether kv_heads / head_dim are set)."""
    def keep(value: Any) -> Any:
        return value if isinstance(value, (bool, str)) or value is None else "set"

    nodes = {n: (op, {k: keep(v) for k, v in params.items()}, inputs, ties)
             for n, (op, params, inputs, ties) in sig["nodes"].items()}
    return {**sig, "nodes": nodes}


def refusal(near: list[tuple[int, str, str, list[str]]], refused: list[str]) -> str:
    """No family has the architecture: the closest (fewest differences) and what blocks it, then the others."""
    families = ", ".join(sorted(FAMILIES))
    lines = [f"no transformers class represents this spec: no supported family ({families}) has this architecture"]
    if near:
        _, model_type, cls_name, diff = min(near)
        lines.append(f"the closest is {model_type} ({cls_name}); what blocks it:")
        lines += [f"  - {d}" for d in diff[:8]] + ([f"  - ... ({len(diff) - 8} more)"] if len(diff) > 8 else [])
        others = [f"{t}: {len(d)} differences" for _, t, _, d in sorted(near)[1:]] + refused
    else:
        others = refused
    if others:
        lines.append("the other families: " + "; ".join(others))
    lines.append("export-hf writes only what transformers rebuilds exactly; `specc import-hf` of a model of the "
                 "closest family shows the spec it would need")
    return "\n".join(lines)


def architecture_differences(ours: dict[str, Any], theirs: dict[str, Any], family: str) -> list[str]:
    """How the spec's architecture differs from the family's: ops it uses that the family lacks (and the
    reverse) and op settings, before naming and wiring (`differences`, node by node)."""
    mine, other = _ops(ours), _ops(theirs)
    out = [f"uses {op} ×{len(mine[op])}, which {family} has none of" for op in mine if op not in other]
    out += [f"{family} has {op} ×{len(other[op])}, which the spec has none of" for op in other if op not in mine]
    for op in (o for o in mine if o in other):  # how many of each is a matter of depth, a size: not compared
        for key in sorted({k for p in mine[op] + other[op] for k in p}):
            a, b = _values(mine[op], key), _values(other[op], key)
            if a != b:
                out.append(f"{op} {key}: {a} in the spec, {b} in {family}")
    if out:
        return out
    return [f"same ops and settings, named or wired differently: {d}" for d in differences(ours, theirs)[:4]]


def _ops(sig: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for op, params, _, _ in sig["nodes"].values():
        found.setdefault(op, []).append(params)
    return found


def _values(params: list[dict[str, Any]], key: str) -> str:
    return " / ".join(sorted({repr(p.get(key)) for p in params}))


def signature(graph: LayerGraph) -> dict[str, Any]:
    """What a graph computes, for comparison: inputs, outputs, and each node's op, params, inputs and ties."""
    nodes = {
        n.name: (n.op, {k: v for k, v in n.params.model_dump().items() if k not in _NOT_COMPARED}, dict(n.inputs), dict(n.ties))
        for n in graph.nodes.values()
    }
    return {"inputs": {k: str(t) for k, t in graph.inputs.items()}, "outputs": dict(graph.outputs), "nodes": nodes}


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """How graph signature `ours` differs from `theirs` (the config's), one line per difference."""
    out: list[str] = []
    for key in ("inputs", "outputs"):
        if ours[key] != theirs[key]:
            out.append(f"{key} {ours[key]} ≠ {theirs[key]}")
    a, b = ours["nodes"], theirs["nodes"]
    out += [f"node '{n}' has no counterpart" for n in a if n not in b]
    out += [f"node '{n}' is missing" for n in b if n not in a]
    for name in (n for n in a if n in b and a[n] != b[n]):
        (op, params, inputs, ties), (op2, params2, inputs2, ties2) = a[name], b[name]
        if op != op2:
            out.append(f"node '{name}' is {op}, not {op2}")
            continue
        changed = [f"{k} {params.get(k)!r} ≠ {params2.get(k)!r}" for k in sorted(set(params) | set(params2))
                   if params.get(k) != params2.get(k)]
        changed += [f"inputs {inputs} ≠ {inputs2}"] if inputs != inputs2 else []
        changed += [f"ties {ties or 'none'} ≠ {ties2 or 'none'}"] if ties != ties2 else []
        out.append(f"node '{name}': " + ", ".join(changed))
    return out


def write_hf_dir(folder: str | os.PathLike[str], exported: Exported, tokenizer: HFTokenizer | None = None) -> list[Path]:
    """`config.json`, `model.safetensors` and (with a tokenizer) `tokenizer.json` + `tokenizer_config.json`."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    config = {**exported.config, "dtype": "float32"}
    if tokenizer is not None:  # token ids the architecture does not fix come from the tokenizer
        for role, key in _TOKEN_FIELDS.items():
            token_id = tokenizer.token_id(role)
            if token_id is not None and key not in config:
                config[key] = token_id
    if config.get("is_encoder_decoder") and "decoder_start_token_id" not in config and "pad_token_id" in config:
        config["decoder_start_token_id"] = config["pad_token_id"]  # specc's decoders start from pad (T5's convention)
    files = [root / "config.json"]
    files[0].write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    files.append(write_weights(root, exported.state))
    if tokenizer is not None:
        tokenizer.tok.save(str(root / "tokenizer.json"))
        (root / "tokenizer_config.json").write_text(json.dumps(tokenizer.config(), indent=2) + "\n")
        files += [root / "tokenizer.json", root / "tokenizer_config.json"]
    return files
