"""`RawSpec`: the parsed spec tree before validation, with a span for every key.

Both front ends (TOML and the DSL) produce a `RawSpec`. This module also
merges an `extends` base under its child and applies ``--set`` overrides,
keeping each value's provenance (file, base file, command line).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from specc.diagnostics import Origin, Span

Path = tuple[str | int, ...]

MAX_DEPTH = 32  # deeper trees are never a sensible spec and would strain recursion


@dataclass
class SpanTable:
    """Where each key path's key and value are written."""

    keys: dict[Path, Span] = field(default_factory=dict)
    values: dict[Path, Span] = field(default_factory=dict)


@dataclass(frozen=True)
class BaseFile:
    """One link of an `extends` chain: what a spec wrote, and the file that was read for it."""

    ref: str  # as written, e.g. "gpt-tiny.toml" or "specc:gpt-tiny"
    file: str  # the file read
    found_in: str  # which root held it: "the spec's folder", "search path DIR", "the specs shipped with specc"
    named_by: str  # the spec file whose `extends` it is


@dataclass
class RawSpec:
    """A spec tree (TOML-shaped: tables, arrays, scalars) plus spans and sources."""

    data: dict[str, Any]
    spans: SpanTable
    file: str
    sources: dict[str, str] = field(default_factory=dict)
    bases: list[BaseFile] = field(default_factory=list)  # the `extends` chain, nearest base first

    def key_span(self, path: Path) -> Span | None:
        """Span of the key at `path`, or of its nearest written ancestor."""
        return _nearest(self.spans.keys, path)

    def value_span(self, path: Path) -> Span | None:
        """Span of the value at `path`, or of its nearest written ancestor."""
        return _nearest(self.spans.values, path) or _nearest(self.spans.keys, path)

    def file_span(self) -> Span:
        return Span(self.file, 0, 0)


def _nearest(table: dict[Path, Span], path: Path) -> Span | None:
    for cut in range(len(path), 0, -1):
        span = table.get(tuple(path[:cut]))
        if span is not None:
            return span
    return None


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a tree, stopping early once it exceeds `limit`."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def merge_base(base: RawSpec, child: RawSpec) -> RawSpec:
    """`child` layered over `base`: tables merge key by key, anything else replaces."""
    data = copy.deepcopy(base.data)
    keys = {p: replace(s, origin=Origin.BASE) for p, s in base.spans.keys.items()}
    values = {p: replace(s, origin=Origin.BASE) for p, s in base.spans.values.items()}
    _merge_into(data, child.data, (), keys, values)
    keys.update(child.spans.keys)
    values.update(child.spans.values)
    sources = {**base.sources, **child.sources}
    return RawSpec(data, SpanTable(keys, values), child.file, sources, child.bases + base.bases)


def _merge_into(dst: dict, src: dict, prefix: Path, keys: dict, values: dict) -> None:
    for key, value in src.items():
        path = prefix + (key,)
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge_into(dst[key], value, path, keys, values)
            continue
        _forget_below(path, keys, values)
        dst[key] = copy.deepcopy(value)


def _forget_below(path: Path, keys: dict, values: dict) -> None:
    for table in (keys, values):
        for p in [p for p in table if p[: len(path)] == path]:
            del table[p]


def apply_set(raw: RawSpec, path: Path, value: Any, span: Span) -> None:
    """Set `path` to `value` in place (creating tables), recording a CLI span."""
    node: dict[Any, Any] = raw.data
    for i, key in enumerate(path[:-1]):
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
            raw.spans.keys[tuple(path[: i + 1])] = span
        node = nxt
    node[path[-1]] = value
    _forget_below(path, raw.spans.keys, raw.spans.values)
    raw.spans.keys[path] = span
    raw.spans.values[path] = span
