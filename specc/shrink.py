"""Shrink a spec for a quick smoke run: fewer layers, narrower widths, same structure.

The result is a list of ``--set`` overrides, so the shrunk spec goes through
the same pipeline (and diagnostics) as any other.
"""

from __future__ import annotations

from specc.diagnostics import SpecError
from specc.graph import build_graph
from specc.raw import RawSpec
from specc.schema import validate

FACTORS = (16, 8, 4, 2)
MIN_WIDTH = 8


def shrink_overrides(raw: RawSpec, max_layers: int = 2) -> list[str]:
    """`--set` overrides that make `raw` small, trying narrower widths first; [] if nothing shrinks."""
    spec = validate(raw)
    literal = {k: v for k, v in spec.raw.data.get("params", {}).items() if isinstance(v, int) and not isinstance(v, bool)}
    depth_params = _repeat_params(spec.raw)
    for factor in FACTORS:
        sets = []
        for name, value in literal.items():
            if name in depth_params:
                sets.append(f"params.{name}={min(value, max_layers)}")
            elif value >= 256:
                sets.append(f"params.{name}={_narrow(value, factor)}")
        if _builds(raw, sets):
            return sets
    return [f"params.{n}={min(v, max_layers)}" for n, v in literal.items() if n in depth_params]


def _narrow(value: int, factor: int) -> int:
    return value // factor if value % factor == 0 else max(value // factor, MIN_WIDTH)


def _repeat_params(raw: RawSpec) -> set[str]:
    names: set[str] = set()
    for node in raw.data.get("model", {}).get("nodes", {}).values():
        if isinstance(node, dict) and isinstance(node.get("repeat"), str):
            names.add(node["repeat"].strip())
    return names


def _builds(raw: RawSpec, sets: list[str]) -> bool:
    from specc.frontend import apply_cli_sets

    try:
        build_graph(validate(apply_cli_sets(raw, sets)))
    except SpecError:
        return False
    return True
