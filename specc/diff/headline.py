"""The one-paragraph summary at the top of a diff, in an engineer's words:
"depth 12 → 24, FFN 3072 → 4096, +225.7 M parameters, attention now uses 4 kv
heads; the embeddings and layers 0–11 of the old checkpoint still load".
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from specc.diff.align import ranges
from specc.diff.types import Compat, Fit, SpecDiff
from specc.graph import LayerGraph

_NAMED = {"d_model": "width", "d_ff": "FFN", "heads": "heads", "vocab": "vocabulary", "max_len": "positions",
          "dim": "width"}
_MAX_GENERIC = 4


def headline(diff: SpecDiff, a: LayerGraph, b: LayerGraph) -> list[str]:
    """Short phrases, most telling first; the renderers join them."""
    if diff.empty:
        return ["no differences"]
    phrases: list[str] = []
    if diff.same_architecture:
        phrases.append("same architecture")
    else:
        phrases += _depth(diff)
        phrases += _groups(diff)
        phrases += _node_params(a, b)
        phrases.append(_param_delta(diff.params_old, diff.params_new))
    if diff.sections:
        names = ", ".join(c.path for c in diff.sections[:3]) + (", …" if len(diff.sections) > 3 else "")
        phrases.append(f"{len(diff.sections)} runtime setting{'s' if len(diff.sections) != 1 else ''} changed ({names})")
    if not diff.same_architecture:
        phrases.append(compat_phrase(diff.compat))
    return phrases


def _depth(diff: SpecDiff) -> list[str]:
    repeats = [g for g in diff.groups if g.kind_old and g.kind_new and "×" in g.kind_old and "×" in g.kind_new]
    out = []
    for g in repeats:
        n_old, n_new = int(g.kind_old.split("× ")[1]), int(g.kind_new.split("× ")[1])  # type: ignore[union-attr]
        if n_old != n_new:
            label = "depth" if len(repeats) == 1 else f"{g.name} depth"
            out.append(f"{label} {n_old} → {n_new}")
    return out


def _groups(diff: SpecDiff) -> list[str]:
    added = [g.name for g in diff.groups if g.status == "added"]
    removed = [g.name for g in diff.groups if g.status == "removed"]
    out = []
    if added:
        out.append("adds " + ", ".join(added))
    if removed:
        out.append("drops " + ", ".join(removed))
    return out


def _node_params(a: LayerGraph, b: LayerGraph) -> list[str]:
    """Param changes shared by every node they touch, keyed by param name (nodes paired by name)."""
    seen: dict[tuple[str, str], set[tuple[Any, Any]]] = defaultdict(set)
    ops: set[tuple[str, str]] = set()
    for name, nb in b.nodes.items():
        na = a.nodes.get(name)
        if na is None:
            continue
        if na.op != nb.op:
            ops.add((na.op, nb.op))
            continue
        da, db = na.params.model_dump(mode="json"), nb.params.model_dump(mode="json")
        for key in set(da) | set(db):
            if da.get(key) != db.get(key):
                seen[(nb.op, key)].add((da.get(key), db.get(key)))
    out = [f"{old} → {new}" for old, new in sorted(ops)]
    by_key: dict[str, set[tuple[Any, Any]]] = defaultdict(set)
    for (op, key), values in seen.items():
        by_key[key if key != "dim" or op in ("embedding", "learned_positions") else f"{op}.{key}"] |= values
    generic = 0
    named = {next(iter(by_key[k])) for k in _NAMED if k in by_key and len(by_key[k]) == 1}
    for key in _ordered(by_key):
        values = by_key[key]
        if len(values) != 1:
            if generic < _MAX_GENERIC:
                out.append(f"{key} changes in several ways")
                generic += 1
            continue
        old, new = next(iter(values))
        if key == "kv_heads":
            out.append(f"attention now uses {new} kv heads" if new is not None else "attention no longer groups kv heads")
        elif key == "activation":
            out.append(f"FFN activation {old} → {new}")
        elif key in _NAMED:
            out.append(f"{_NAMED[key]} {_show(old)} → {_show(new)}")
        elif (old, new) in named:
            continue  # e.g. a linear's in_dim that follows the width: said already
        elif generic < _MAX_GENERIC:
            out.append(f"{key} {_show(old)} → {_show(new)}")
            generic += 1
    return _dedupe(out)


def _ordered(keys: dict[str, Any]) -> list[str]:
    first = ["d_model", "d_ff", "heads", "kv_heads", "activation", "vocab", "max_len"]
    return [k for k in first if k in keys] + sorted(k for k in keys if k not in first)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _show(value: Any) -> str:
    if value is None:
        return "default"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _param_delta(old: int, new: int) -> str:
    if old == new:
        return "parameters unchanged"
    sign = "+" if new > old else "−"
    return f"{sign}{si(abs(new - old))} parameters ({si(old)} → {si(new)})"


def si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(int(n))


def compat_phrase(compat: Compat) -> str:
    """Which parts of the old checkpoint still load, by top-level entry and layer."""
    whole: dict[str, list[str]] = defaultdict(list)  # group → fits of its tensors
    layers: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for t in compat.tensors:
        if t.fit == "dropped":
            continue
        parts = t.name.split(".")
        if len(parts) > 2 and parts[1].isdigit():
            layers[parts[0]][int(parts[1])].append(t.fit)
        else:
            whole[parts[0]].append(t.fit)
    loads = [g for g, fits in whole.items() if all(f == "loads" for f in fits)]
    for group, per_layer in layers.items():
        full = [i for i, fits in per_layer.items() if all(f == "loads" for f in fits)]
        if full:
            loads.append(f"the first {len(full)} layers of {group}" if full == list(range(len(full))) and len(full) > 1
                         else f"{group}.{ranges(full)}")
        partial = [i for i, fits in per_layer.items() if i not in full and "loads" in fits]
        if partial:
            loads.append(f"part of {'every layer' if len(partial) == len(per_layer) else 'layers ' + ranges(partial)} of {group}")
    source = "the old checkpoint"
    if not compat.count("loads"):
        return f"no tensor of {source} loads as is"
    if not any(t.fit != "loads" for t in compat.tensors):
        return f"every tensor of {source} loads as is"
    shown = loads[:5] + ([f"{len(loads) - 5} more"] if len(loads) > 5 else [])
    words: list[tuple[Fit, str]] = [("reshaped", "change shape"), ("new", "are new"), ("dropped", "unused")]
    tail = [f"{compat.count(f)} {word}" for f, word in words if compat.count(f)]
    if not loads:
        return f"{compat.count('loads')} tensors of {source} load as is ({', '.join(tail)})"
    joined = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"{joined} still load from {source} ({', '.join(tail)})"
