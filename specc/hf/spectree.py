"""Spec trees built from the reference specs in `specs/`, and their TOML text.

An imported spec starts as the merged tree of a reference spec (its `extends`
chain followed), gets the imported config's parameters and a few named edits
(a node dropped, a node parameter set, an output added), and is written out as
one self-contained TOML file in the layout of the hand-written specs: tables
for params and blocks, one inline table per node.

Self-contained rather than `extends = ".../specs/x.toml"`: `extends` may not
leave the spec's folder (without `--search-path`), and an imported spec should
keep working wherever it is copied. `specc diff` compares resolved specs, so
against its reference spec it shows only the imported differences.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from specc.diagnostics import SpecError
from specc.expr import Number
from specc.frontend import parse
from specc.frontend.bases import shipped_specs
from specc.raw import RawSpec, SpanTable
from specc.schema import ModelSpec, validate

_HEAD = ("format", "name", "description")
_ARCH = ("params", "init", "blocks", "model")


@dataclass
class SpecTree:
    """A spec as a plain tree (TOML-shaped), edited in place."""

    data: dict[str, Any]
    template: str  # the reference spec it started from, e.g. "bert-base.toml"

    @classmethod
    def load(cls, name: str, specs_dir: Path | None = None) -> SpecTree:
        """The merged tree of reference spec `name` from `specs_dir` (default: the specs shipped with specc)."""
        folder = specs_dir or shipped_specs()
        path = folder / name if folder is not None else Path(name)
        if folder is None or not path.is_file():
            raise FileNotFoundError(f"reference spec {name} not found in {folder or 'this installation'}; "
                                    "specc's HF import needs the shipped specs")
        return cls(copy.deepcopy(parse(path).data), name)

    # -- parameters ----------------------------------------------------------------------
    def set_params(self, values: Mapping[str, Number]) -> None:
        """Give params these values; a template expression that already evaluates to the value is kept."""
        table = self.data.setdefault("params", {})
        pending = {}
        for key, value in values.items():
            if isinstance(table.get(key), str):
                pending[key] = value
            else:
                table[key] = value
        while pending:
            try:
                resolved = self.resolve().params
            except SpecError:  # an expression that no longer holds (e.g. inexact division): use the numbers
                table.update(pending)
                return
            wrong = {k: v for k, v in pending.items() if not _same(resolved[k], v)}
            if not wrong:
                return
            table.update(wrong)
            pending = {k: v for k, v in pending.items() if k not in wrong}

    def param(self, key: str) -> Any:
        return self.data["params"][key]

    # -- nodes ---------------------------------------------------------------------------
    def node(self, where: str, name: str) -> dict[str, Any]:
        """Node `name` of the model (`where="model"`) or of block `where`."""
        table = self.data["model"]["nodes"] if where == "model" else self.data["blocks"][where]["nodes"]
        return table[name]  # type: ignore[no-any-return]

    def set(self, where: str, name: str, **values: Any) -> None:
        self.node(where, name).update(values)

    def unset(self, where: str, name: str, key: str) -> None:
        self.node(where, name).pop(key, None)

    def drop_nodes(self, *names: str) -> None:
        """Remove top-level nodes (names the tree lacks are skipped), the outputs that read them, and
        inputs nothing reads any more."""
        model = self.data["model"]
        for name in names:
            model["nodes"].pop(name, None)
        model["outputs"] = {k: v for k, v in model["outputs"].items() if v not in names}
        read = {ref for node in model["nodes"].values() for ref in _refs(node)}
        read |= {ref for block in self.data.get("blocks", {}).values() for node in block["nodes"].values() for ref in _refs(node)}
        model["inputs"] = {k: v for k, v in model["inputs"].items() if k in read}

    def add_output(self, name: str, node: str) -> None:
        self.data["model"]["outputs"][name] = node

    # -- results -------------------------------------------------------------------------
    def resolve(self, file: str = "<imported>") -> ModelSpec:
        """Validate the tree (params evaluated); raises `SpecError`."""
        return validate(RawSpec(copy.deepcopy(self.data), SpanTable(), file))

    def text(self, header: list[str]) -> str:
        """The spec as TOML in the hand-written layout, after `header` comment lines."""
        return emit_toml(self.data, header)


def _same(a: Number, b: Number) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b or math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)


def _refs(node: Mapping[str, Any]) -> list[str]:
    src = node.get("in", [])
    return [src] if isinstance(src, str) else list(src.values()) if isinstance(src, dict) else list(src)


# -- TOML text -------------------------------------------------------------------------------
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def emit_toml(data: Mapping[str, Any], header: list[str] = ()) -> str:  # type: ignore[assignment]
    """A spec tree as TOML: top-level keys, then tables; nodes as one inline table per line."""
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [f"{_key(k)} = {_value(data[k])}" for k in _HEAD if k in data]
    rest = [k for k in _ARCH if k in data] + [k for k in data if k not in _HEAD and k not in _ARCH]
    for key in rest:
        value = data[key]
        if isinstance(value, dict):
            _table(lines, (key,), value)
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    inline = path[-1] == "nodes"  # one node per line, as the reference specs write them
    scalars = [k for k, v in table.items() if inline or not isinstance(v, dict)]
    if scalars or not table:
        lines += ["", "[" + ".".join(_key(p) for p in path) + "]"]
        lines += [f"{_key(k)} = {_value(table[k])}" for k in scalars]
    for key, value in table.items():
        if key not in scalars:
            _table(lines, path + (key,), value)


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else "inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
