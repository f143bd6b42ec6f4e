"""Hugging Face directory → spec (and compiled model with the checkpoint's weights).

`spec_from_config` turns a `config.json` dict into a spec tree via its
family's reference spec, accounting for every config field; `load_pretrained`
also maps the weights (`specc.hf.weights`) and reads the tokenizer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from specc import tensorcheck
from specc.compiler import SpecModel, compile_model
from specc.graph import LayerGraph, build_graph
from specc.hf.families import FAMILIES
from specc.hf.family import ConfigReader, Family, HFClass, HFImportError, Weights
from specc.hf.files import HFFormatError, read_config, read_weights, weight_files
from specc.hf.spectree import SpecTree
from specc.hf.tokenizer import HFTokenizer
from specc.hf.weights import convert_state_dict
from specc.schema import ModelSpec


@dataclass
class ImportedSpec:
    """A spec made from a config: its text, tree, validated spec and graph, and what was ignored (field → why)."""

    text: str
    tree: SpecTree
    spec: ModelSpec
    graph: LayerGraph
    family: Family
    hf_class: HFClass
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return self.tree.template


@dataclass
class Pretrained:
    """`load_pretrained`'s result: the imported spec, the model with the checkpoint's weights, the tokenizer."""

    imported: ImportedSpec
    model: SpecModel
    tokenizer: HFTokenizer | None


def choose_class(config: Mapping[str, Any], architecture: str | None = None) -> tuple[Family, HFClass]:
    """The family (by `model_type`) and class (`architecture`, else the config's first `architectures`
    entry, else the base model) to import."""
    model_type = config.get("model_type")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise HFImportError("this config", [f"model_type {model_type!r} is not one specc imports "
                                            f"(known: {', '.join(sorted(FAMILIES))})"])
    listed = config.get("architectures") or []
    name = architecture or (listed[0] if isinstance(listed, list) and listed else family.classes[0].name)
    cls = family.cls(name)
    if cls is None:
        known = ", ".join(c.name for c in family.classes)
        raise HFImportError(f"a {family.model_type} config", [
            f"class {name!r} is not one specc imports (known: {known}); pass --architecture "
            f"{family.classes[0].name} to import the base model"])
    return family, cls


def spec_from_config(config: Mapping[str, Any], architecture: str | None = None, allow_unknown: Iterable[str] = (),
                     weights: Weights | None = None, source: str = "config.json", name: str | None = None) -> ImportedSpec:
    """The spec for a `transformers` config; `weights` (optional) settle what a config leaves open
    (T5's untied LM head). Raises `HFImportError` naming every unsupported field."""
    family, cls = choose_class(config, architecture)
    reader = ConfigReader(config, f"{source} ({cls.name})", tuple(allow_unknown))
    tree = family.to_spec(reader, cls, weights)  # calls reader.finish(): every field accounted for
    version = config.get("transformers_version")
    tree.data["name"] = name or Path(str(config.get("_name_or_path") or cls.name)).name or cls.name
    tree.data["description"] = f"{cls.name} imported from Hugging Face"
    header = [f"Imported by `specc import-hf` from {source} ({cls.name}" + (f", transformers {version})." if version else ").")]
    header += [f"The structure of specs/{tree.template}; `specc diff` against it shows what the config changes."]
    if reader.ignored:
        header += ["Config fields that do not change the architecture: " + ", ".join(sorted(reader.ignored)) + "."]
    spec = tree.resolve(source)
    return ImportedSpec(tree.text(_wrap(header)), tree, spec, build_graph(spec), family, cls, dict(reader.ignored))


def load_pretrained(folder: str | os.PathLike[str], architecture: str | None = None, allow_unknown: Iterable[str] = (),
                    skip: Iterable[str] = (), weights: bool = True) -> Pretrained:
    """A Hugging Face directory as a compiled model with its weights (or freshly initialised when
    `weights` is false or the directory has none) and its tokenizer (None without `tokenizer.json`)."""
    config = read_config(folder)
    state = read_weights(folder) if weights and weight_files(folder) else None
    imported = spec_from_config(config, architecture, allow_unknown, state, str(Path(folder) / "config.json"),
                                name=Path(folder).resolve().name)
    model = compile_model(imported.graph, init=state is None)
    if state is not None:
        converted = convert_state_dict(state, model, imported.hf_class.arch, skip)
        _check_weights(state, converted, model.state_dict(), folder)
        with torch.no_grad():
            model.load_state_dict(converted, strict=True)
    return Pretrained(imported, model.eval(), HFTokenizer.from_dir(folder))


def _check_weights(state: Mapping[str, torch.Tensor], converted: Mapping[str, torch.Tensor],
                   expected: Mapping[str, torch.Tensor], folder: str | os.PathLike[str]) -> None:
    """Every weight the model takes is floating point and finite (a header may call float data I32; a file may
    hold NaN): the model would load them cast, and everything after would be garbage with exit status 0."""
    bad = tensorcheck.first_problem(dict(state))
    if bad:
        raise HFFormatError(f"{folder}: {bad}")
    for name, tensor in converted.items():
        bad = tensorcheck.problem(tensor) if name in expected and expected[name].is_floating_point() else None
        if bad:
            raise HFFormatError(f"{folder}: the tensor loaded into {name} {bad}")


def _wrap(lines: list[str], width: int = 100) -> list[str]:
    out: list[str] = []
    for line in lines:
        words, current = line.split(" "), ""
        for word in words:
            if current and len(current) + 1 + len(word) > width:
                out.append(current)
                current = "  " + word
            else:
                current = f"{current} {word}" if current else word
        out.append(current)
    return out
