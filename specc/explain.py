"""`specc explain`: each value of the resolved spec, and where it came from.

A key path names a value in the merged spec tree (after `extends` and
``--set``): dots separate keys, a number indexes an array, and a key with dots
in it is quoted — ``blocks.decoder_layer.nodes.attn.heads``,
``model.nodes.h.in.0``, ``model.nodes.mlm_head.tie."decoder.weight"``. A path
into a table explains every value under it; no path explains the whole spec.
An op parameter the spec does not write is shown with its default. A path may
also name a built node and one of its parameters (``h.3.attn.heads``), which
shows the value that layer really gets, overrides included.

Each value says where it was written: ``file:line:col``, with ``(base file)``
when inherited through `extends`, ``(command line)`` for ``--set``, or
``default``. An expression is shown with its value and, for every parameter it
reads, that parameter's value and origin. The `extends` chain comes first: for
each base, the file that was read and the folder that held it (the spec's
folder, a search path, or the specs shipped with specc); the key ``extends``
shows only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specc.diagnostics import Diagnostic, Span, SpecError, did_you_mean
from specc.expr import ExprError, names_in
from specc.frontend import spelling
from specc.graph import LayerGraph
from specc.raw import Path, RawSpec
from specc.schema import ModelSpec
from specc.schema.model import InitSpec

DEFAULT = "default"


@dataclass
class Explained:
    """One value: its path, the value as written, what it resolves to, and its origin."""

    path: Path
    written: Any
    origin: str
    resolved: list[tuple[str, Any]] = field(default_factory=list)  # (where, value) — one item, or one per layer group
    reads: list[Explained] = field(default_factory=list)  # the params an expression reads

    def lines(self, detail: bool = True) -> list[str]:
        head = f"{show_path(self.path)} = {show(self.written)}"
        if len(self.resolved) == 1 and not same(self.resolved[0][1], self.written):
            head += f" → {show(self.resolved[0][1])}"
        out = [f"{head}  # {self.origin}"]
        if len(self.resolved) > 1:
            out += [f"    {where}: {show(value)}" for where, value in self.resolved]
        if detail:
            out += [f"    where {show_path(r.path[1:])} = {show(r.written)}"
                    + (f" → {show(r.resolved[0][1])}" if r.resolved and not same(r.resolved[0][1], r.written) else "")
                    + f"  # {r.origin}" for r in self.reads]
        return out


def parse_key(text: str) -> Path:
    """``a.b."c.d".0`` → ("a", "b", "c.d", 0); numbers index arrays."""
    parts: list[str | int] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise SpecError([Diagnostic("E009", f"unterminated quoted key in '{text}'")])
            parts.append(spelling.unquote(text[i : j + 1]))
            i = j + 1
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            piece = text[i:j].strip()
            parts.append(int(piece) if piece.isdigit() else piece)
            i = j
        if i < n and text[i] != ".":
            raise SpecError([Diagnostic("E009", f"expected '.' after a quoted key in '{text}'")])
        i += 1
    if not parts or any(p == "" for p in parts):
        raise SpecError([Diagnostic("E009", f"'{text}' is not a key path", None, "write e.g. params.d_model")])
    return tuple(parts)


def explain(raw: RawSpec, spec: ModelSpec | None, graph: LayerGraph | None, key: str | None) -> list[Explained]:
    """Explain the value(s) at `key` (all values if None). `spec`/`graph` add resolved values when given."""
    ctx = _Context(raw, spec, graph)
    path = parse_key(key) if key else ()
    found, value = _walk(raw.data, path)
    if found:
        return [ctx.leaf(p, v) for p, v in _leaves(path, value)]
    default = ctx.default(path)
    if default is not None:
        return [default]
    built = ctx.built(path)
    if built is not None:
        return [built]
    raise SpecError([ctx.missing(path)])


def chain_lines(raw: RawSpec) -> list[str]:
    """The `extends` chain: each base as written, the file read for it, and which folder held it."""
    return [f"extends {spelling.quote(b.ref)} → {b.file}  # named in {b.named_by}; found in {b.found_in}" for b in raw.bases]


def show_path(path: Path) -> str:
    return ".".join(str(p) if isinstance(p, int) or spelling.DSL_NAME.match(p) else spelling.quote(p) for p in path)


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return spelling.number_text(value)
    if isinstance(value, str):
        return spelling.quote(value)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{show_path((k,))} = {show(v)}" for k, v in value.items()) + "}"
    return str(value)


def same(a: Any, b: Any) -> bool:
    return spelling.same_value(a, b) or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b
                                         and not isinstance(a, bool) and not isinstance(b, bool))


def _node_of(path: Path) -> Path:
    """The path of the node `path` lies in (`model.nodes.X`, `blocks.B.nodes.X`), or ()."""
    if path[:2] == ("model", "nodes") and len(path) > 3:
        return path[:3]
    if path[:1] == ("blocks",) and len(path) > 4 and path[2] == "nodes":
        return path[:4]
    return ()


def _in_node(path: Path) -> bool:
    return bool(_node_of(path))


def _evaluated(path: Path) -> bool:
    """Whether a string at `path` is an expression (not a name, a type, a node reference or text)."""
    if len(path) == 1 or path[:2] in (("model", "inputs"), ("model", "outputs")):
        return False
    return not (path[:1] == ("blocks",) and len(path) == 3 and path[2] in ("inputs", "output"))


def _walk(data: Any, path: Path) -> tuple[bool, Any]:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, int) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False, None
    return True, node


def _leaves(path: Path, value: Any) -> list[tuple[Path, Any]]:
    """Every value under `path`: tables are walked, arrays of tables too; other arrays are values."""
    out: list[tuple[Path, Any]] = []
    stack = [(path, value)]
    while stack:
        p, v = stack.pop()
        if isinstance(v, dict) and v:
            stack += [(p + (k,), v[k]) for k in reversed(list(v))]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            stack += [(p + (i,), v[i]) for i in reversed(range(len(v)))]
        else:
            out.append((p, v))
    return out


class _Context:
    def __init__(self, raw: RawSpec, spec: ModelSpec | None, graph: LayerGraph | None):
        self.raw, self.spec, self.graph = raw, spec, graph

    def origin(self, path: Path) -> str:
        span = self.raw.spans.values.get(path) or self.raw.spans.keys.get(path) or self.raw.value_span(path)
        return span.describe() if span is not None else self.raw.file

    def leaf(self, path: Path, value: Any) -> Explained:
        item = Explained(path, value, self.origin(path))
        if self.spec is None:
            return item
        if path[:1] == ("params",) and len(path) == 2 and path[1] in self.spec.params:
            item.resolved = [("", self.spec.params[str(path[1])])]
        elif _in_node(path):
            item.resolved = self.node_values(path) or (self.expression(value) if path[len(_node_of(path))] in
                                                       ("repeat", "with", "overrides") else [])
        elif _evaluated(path):
            item.resolved = self.expression(value)
        if isinstance(value, str) and item.resolved:
            item.reads = self.reads(value)
        return item

    def expression(self, value: Any) -> list[tuple[str, Any]]:
        """A string that is an expression over the global params, evaluated; [] for anything else."""
        from specc.expr import evaluate

        if not isinstance(value, str) or self.spec is None:
            return []
        try:
            if not names_in(value) <= set(self.spec.params):
                return []
            return [("", evaluate(value, self.spec.params))]
        except ExprError:
            return []

    def reads(self, value: str) -> list[Explained]:
        if self.spec is None:
            return []
        try:
            names = sorted(names_in(value) & set(self.spec.params))
        except ExprError:
            return []
        out = []
        for name in names:
            path = ("params", name)
            item = Explained(path, _walk(self.raw.data, path)[1], self.origin(path))
            item.resolved = [("", self.spec.params[name])]
            out.append(item)
        return out

    def node_values(self, path: Path) -> list[tuple[str, Any]]:
        """What a node parameter resolves to in the built graph: one value, or one per group of layers."""
        if self.graph is None or len(path) < 4 or path[-3] != "nodes":
            return []
        name, key = path[-2], path[-1]
        if path[:2] == ("model", "nodes") and len(path) == 4:
            nodes = [self.graph.nodes[name]] if name in self.graph.nodes else []
        elif path[:1] == ("blocks",) and len(path) == 5:
            nodes = [n for n in self.graph.nodes.values() if n.block == path[1] and n.name.endswith(f".{name}")]
        else:
            return []
        values = [(n.name, getattr(n.params, str(key))) for n in nodes if str(key) in type(n.params).model_fields]
        return _grouped(values)

    def default(self, path: Path) -> Explained | None:
        """A value the spec does not write: an `init` default, or an op parameter's default."""
        if len(path) == 2 and path[0] == "init" and path[1] in InitSpec.model_fields:
            return Explained(path, InitSpec.model_fields[str(path[1])].default, DEFAULT)
        values = self.node_values(path)
        if values:
            item = Explained(path, values[0][1], DEFAULT)
            item.resolved = values
            return item
        return None

    def built(self, path: Path) -> Explained | None:
        """A built node's parameter, e.g. `h.3.attn.heads`: the value that layer gets."""
        if self.graph is None or len(path) < 2:
            return None
        name, key = ".".join(map(str, path[:-1])), str(path[-1])
        node = self.graph.nodes.get(name)
        if node is None or key not in type(node.params).model_fields:
            return None
        local = name.rsplit(".", 1)[-1]
        where: Path = ("blocks", node.block, "nodes", local, key) if node.block else ("model", "nodes", name, key)
        found, written = _walk(self.raw.data, where)
        item = Explained(path, written if found else getattr(node.params, key), self.origin(where) if found else DEFAULT)
        item.resolved = [("", getattr(node.params, key))]
        if found and isinstance(written, str):
            item.reads = self.reads(written)
        return item

    def missing(self, path: Path) -> Diagnostic:
        known_at: Path = ()
        known: Any = self.raw.data
        for cut in range(len(path), 0, -1):
            found, value = _walk(self.raw.data, path[:cut])
            if found:
                known_at, known = path[:cut], value
                break
        choices = [str(k) for k in known] if isinstance(known, dict) else []
        if self.graph is not None and not known_at:
            choices += list(self.graph.nodes)
        part = path[len(known_at)]
        where = f" in '{show_path(known_at)}'" if known_at else ""
        return Diagnostic("E009", f"no key '{part}'{where}", Span(self.raw.file), did_you_mean(str(part), choices))


def _grouped(values: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Consecutive layers with one value become one group: [("h.0-h.5", 12), ("h.6-h.11", 16)]."""
    groups: list[tuple[list[str], Any]] = []
    for name, value in values:
        if groups and same(groups[-1][1], value):
            groups[-1][0].append(name)
        else:
            groups.append(([name], value))
    if len(groups) == 1:
        return [("", groups[0][1])]
    return [(names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}", value) for names, value in groups]
