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
from typing import Any

import torch
from torch import nn

from specc.graph import LayerGraph
from specc.hf.families import FAMILIES
from specc.hf.family import Family, GraphView, HFClass, HFImportError, NotRepresentable
from specc.hf.files import write_weights
from specc.hf.importer import spec_from_config
from specc.hf.rules import KEY_LAYOUTS
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


def export_model(graph: LayerGraph, model: nn.Module) -> Exported:
    """The `transformers` config and state dict of a compiled spec; `NotRepresentable` if no class holds it."""
    view, reasons = GraphView(graph), []
    for family in FAMILIES.values():
        try:
            cls_name, config = family.to_config(view)
            config = {"architectures": [cls_name], **config}
            back = spec_from_config(config).graph
        except (NotRepresentable, HFImportError) as err:
            reasons.append(f"{family.model_type}: {err}")
            continue
        diff = differences(signature(graph), signature(back))
        if diff:
            reasons.append(f"{family.model_type} ({cls_name}): " + "; ".join(diff[:6]) + (" ..." if len(diff) > 6 else ""))
            continue
        cls = family.cls(cls_name)
        assert cls is not None, f"{family.model_type} wrote an unknown class {cls_name}"
        state = export_state_dict(model, KEY_LAYOUTS[cls.arch].rules(family.layout(view, cls)))
        for name in cls.zeros:
            state[name] = torch.zeros(1, config["vocab_size"])
        return Exported(family, cls, config, state)
    raise NotRepresentable("no transformers class represents this spec:\n" + "\n".join(f"  {r}" for r in reasons))


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
    files = [root / "config.json"]
    files[0].write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    files.append(write_weights(root, exported.state))
    if tokenizer is not None:
        tokenizer.tok.save(str(root / "tokenizer.json"))
        (root / "tokenizer_config.json").write_text(json.dumps(tokenizer.config(), indent=2) + "\n")
        files += [root / "tokenizer.json", root / "tokenizer_config.json"]
    return files
