"""build_graph: `ModelSpec` → `LayerGraph`.

Expands blocks (and `repeat`, with per-layer overrides), resolves references,
evaluates op parameters in their scope, validates them against each op's
schema, infers shapes symbolically and resolves weight ties. Every mistake is
collected as a diagnostic with the span of the node or value it concerns.
"""

from __future__ import annotations

import heapq
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from pydantic import ValidationError

from specc.diagnostics import Collector, Diagnostic, Span, did_you_mean
from specc.expr import Number
from specc.graph.adapters import resolve_adapters
from specc.graph.types import BlockInstance, Group, LayerGraph, Node
from specc.ops.base import REGISTRY, OpRecord, ParamError, Shape, ShapeError, fmt_shape
from specc.schema import BlockSpec, ModelSpec, NodeSpec, resolve_params
from specc.schema.validate import number
from specc.schema.errors import diagnostics_from

MAX_REPEAT = 4096


@dataclass
class _Scope:
    """Where a set of node specs lives: its params, names in reach, spec path."""

    params: Mapping[str, Number]
    refs: dict[str, str]  # name usable in `in` → qualified source
    prefix: str  # qualified-name prefix ("" at top level, "h.3." inside a block)
    path: tuple  # spec path of the node table
    block: str | None = None


def build_graph(spec: ModelSpec) -> LayerGraph:
    """Expand, resolve and shape-check a validated spec; raises `SpecError` listing every problem."""
    return _Builder(spec).run()


def _written_order(readers: dict[str, list[str]]) -> list[str] | None:
    """The topological order that keeps the written order wherever the edges allow (at each step, the first
    node in `readers`, the table's order, whose sources are all placed); None when the nodes form a cycle.
    `readers` maps each node to the nodes that read it, once per reference."""
    index = {name: i for i, name in enumerate(readers)}
    waiting = dict.fromkeys(readers, 0)
    for targets in readers.values():
        for target in targets:
            waiting[target] += 1
    ready = [i for i, name in enumerate(readers) if not waiting[name]]
    heapq.heapify(ready)
    names, order = list(readers), []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for target in readers[name]:
            waiting[target] -= 1
            if not waiting[target]:
                heapq.heappush(ready, index[target])
    return order if len(order) == len(readers) else None


def _cycle(readers: dict[str, list[str]]) -> list[str]:
    """The nodes of one cycle, in reading order (networkx's `find_cycle`: only a spec with a cycle pays for it)."""
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_nodes_from(readers)
    dag.add_edges_from((name, target) for name, targets in readers.items() for target in targets)
    return [edge[0] for edge in nx.find_cycle(dag)]


class _Builder:
    def __init__(self, spec: ModelSpec):
        self.spec, self.raw = spec, spec.raw
        self.diags = Collector()
        self.nodes: dict[str, Node] = {}
        self.shapes: dict[str, Shape | None] = {k: t.dims for k, t in spec.model.inputs.items()}
        self.block_orders: dict[str, list[str] | None] = {}
        self.tie_spans: dict[tuple[str, str], Span | None] = {}  # (node, own param) → where the tie is written

    # -- top level --------------------------------------------------------------
    def run(self) -> LayerGraph:
        model = self.spec.model
        path = ("model", "nodes")
        order = self._order(model.nodes, set(model.inputs), path) or []
        scope = _Scope(self.spec.params, {k: k for k in model.inputs}, "", path)
        groups: list[Group] = []
        for name in order:
            group = self._group(name, model.nodes[name], scope)
            if group is not None:
                groups.append(group)
                scope.refs[name] = group.output
        outputs = self._outputs(scope)
        self._ties(groups)
        if not self.diags.items:
            self._unused(groups, outputs)
        self._raise()
        graph = LayerGraph(self.spec, dict(model.inputs), outputs, groups, self.nodes)
        graph.check()
        graph.adapters = resolve_adapters(graph, self.diags)
        self.diags.raise_if_any()
        return graph

    def _raise(self) -> None:
        unique: dict[tuple, Diagnostic] = {}
        for d in self.diags.items:  # a mistake inside a repeated block is reported once
            unique.setdefault((d.code, d.message, d.span), d)
        self.diags.items = list(unique.values())
        self.diags.raise_if_any()

    def _order(self, table: Mapping[str, NodeSpec], given: set[str], path: tuple) -> list[str] | None:
        """Topological order of a node table; undefined references and cycles are diagnostics."""
        readers: dict[str, list[str]] = {name: [] for name in table}
        for name, node in table.items():
            for i, ref in enumerate(_refs(node)):
                if ref in table:
                    readers[ref].append(name)
                elif ref not in given:
                    where = self._in_path(path + (name,), node, i)
                    self.diags.error("E032", f"'{name}' reads '{ref}', which is not defined", self.raw.value_span(where),
                                     did_you_mean(ref, list(table) + sorted(given)))
        order = _written_order(readers)
        if order is None:
            cycle = _cycle(readers)
            self.diags.error("E033", f"nodes form a cycle: {' → '.join(cycle + [cycle[0]])}",
                             self.raw.key_span(path + (cycle[0],)))
        return order

    @staticmethod
    def _in_path(node_path: tuple, node: NodeSpec, index: int) -> tuple:
        if isinstance(node.in_, list):
            return node_path + ("in", index)
        if isinstance(node.in_, dict):
            return node_path + ("in", list(node.in_)[index])
        return node_path + ("in",)

    def _group(self, name: str, node: NodeSpec, scope: _Scope) -> Group | None:
        path = scope.path + (name,)
        span = self.raw.key_span(path)
        if (node.op is None) == (node.block is None):
            self.diags.error("E037", f"node '{name}' needs exactly one of 'op' or 'block'", span)
            return None
        if not self._node_keys(name, node, path):
            return None
        if node.op is not None:
            made = self._node(name, node, scope, path)
            return Group(name, "op", node=made, span=span) if made else None
        return self._block_group(name, node, scope, path)

    def _node_keys(self, name: str, node: NodeSpec, path: tuple) -> bool:
        """Keys of a node that its kind does not take (an op node's extra keys are its op's params)."""
        ok = True
        if node.op is not None:
            given = {"repeat": node.repeat is not None, "with": bool(node.with_), "overrides": bool(node.overrides)}
            for key in [k for k, present in given.items() if present]:
                self.diags.error("E010", f"'{key}' applies only to block nodes; '{name}' is an op node",
                                 self.raw.key_span(path + (key,)))
                ok = False
            return ok
        keys = ["block", "in", "repeat", "with", "overrides"]
        for key in list(node.op_params()) + (["tie"] if node.tie is not None else []):
            hint = did_you_mean(key, keys) or ("tie the parameter inside the block's node" if key == "tie" else None)
            self.diags.error("E010", f"block node '{name}' has no key '{key}'", self.raw.key_span(path + (key,)), hint)
            ok = False
        return ok

    # -- blocks -------------------------------------------------------------------
    def _block_group(self, name: str, node: NodeSpec, scope: _Scope, path: tuple) -> Group | None:
        assert node.block is not None
        block = self.spec.blocks.get(node.block)
        span = self.raw.key_span(path)
        if block is None:
            self.diags.error("E031", f"unknown block '{node.block}'", self.raw.value_span(path + ("block",)),
                             did_you_mean(node.block, self.spec.blocks))
            return None
        sources = self._block_sources(name, node, block, scope, path)
        count = self._repeat_count(node, scope, path)
        if sources is None or count is None:
            return None
        ranges = [self._layer_range(o.layers, count, path + ("overrides", i, "layers")) for i, o in enumerate(node.overrides)]
        instances: list[BlockInstance] = []
        for layer in range(count):
            table, paths = self._block_table(node, block, layer, ranges, path)
            params = resolve_params(table, self.raw, ("blocks", node.block, "params"), {**scope.params, "layer_index": layer},
                                    self.diags, paths)
            prefix = f"{name}.{layer}" if node.repeat is not None else name
            instance = self._instance(prefix, node.block, block, sources, {**scope.params, **params})
            if instance is None:
                return None
            instances.append(instance)
            sources = [instance.output] + sources[1:]  # the first input threads through the stack
        return Group(name, "repeat" if node.repeat is not None else "block", instances=instances, span=span)

    def _block_sources(self, name: str, node: NodeSpec, block: BlockSpec, scope: _Scope, path: tuple) -> list[str] | None:
        refs = _refs(node)
        if isinstance(node.in_, dict):
            self.diags.error("E038", f"block node '{name}' takes its inputs as a list", self.raw.value_span(path + ("in",)))
            return None
        if len(refs) != len(block.inputs):
            self.diags.error("E038", f"block '{node.block}' takes {len(block.inputs)} input(s) ({', '.join(block.inputs)}), "
                             f"got {len(refs)}", self.raw.value_span(path + ("in",)) or self.raw.key_span(path))
            return None
        if any(r not in scope.refs for r in refs):
            return None  # an undefined or failed source is already reported
        return [scope.refs[r] for r in refs]

    def _repeat_count(self, node: NodeSpec, scope: _Scope, path: tuple) -> int | None:
        if node.repeat is None:
            return 1
        count = number(node.repeat, scope.params, self.raw, path + ("repeat",), self.diags, int)
        if isinstance(count, int) and not 1 <= count <= MAX_REPEAT:
            self.diags.error("E036", f"repeat must be between 1 and {MAX_REPEAT}, got {count}", self.raw.value_span(path + ("repeat",)))
            return None
        return count if isinstance(count, int) and count > 0 else None

    def _layer_range(self, text: str | int, count: int, path: tuple) -> range:
        """`"6:12"`, `"3"`, `":4"`, `"-2:"` (Python slice rules) over `count` layers."""
        span = self.raw.value_span(path)
        try:
            if isinstance(text, int):
                picked = range(count)[text:text + 1] if text != -1 else range(count)[-1:]
            else:
                parts = [p.strip() for p in text.split(":")]
                if len(parts) == 1:
                    i = int(parts[0])
                    picked = range(count)[i:i + 1] if i != -1 else range(count)[-1:]
                elif len(parts) == 2:
                    picked = range(count)[slice(*(int(p) if p else None for p in parts))]
                else:
                    raise ValueError
        except ValueError:
            self.diags.error("E035", f"bad layer range '{text}'", span, "write a range like \"6:12\" or a layer index")
            return range(0)
        if not picked:
            self.diags.error("E035", f"layer range '{text}' selects none of the {count} layers", span)
        return picked

    def _block_table(self, node: NodeSpec, block: BlockSpec, layer: int, ranges: list[range], path: tuple
                     ) -> tuple[dict[str, Any], dict[str, tuple]]:
        table: dict[str, Any] = dict(block.params)
        paths: dict[str, tuple] = {k: ("blocks", node.block, "params", k) for k in block.params}
        layers = [(node.with_, path + ("with",))]
        layers += [(o.with_, path + ("overrides", i, "with")) for i, o in enumerate(node.overrides) if layer in ranges[i]]
        for values, where in layers:
            for key, value in values.items():
                if key not in block.params:
                    self.diags.error("E039", f"block '{node.block}' has no parameter '{key}'", self.raw.key_span(where + (key,)),
                                     did_you_mean(key, block.params))
                    continue
                table[key], paths[key] = value, where + (key,)
        return table, paths

    def _instance(self, prefix: str, block_name: str, block: BlockSpec, sources: list[str], params: Mapping[str, Number]
                  ) -> BlockInstance | None:
        path = ("blocks", block_name, "nodes")
        if block_name not in self.block_orders:
            self.block_orders[block_name] = self._order(block.nodes, set(block.inputs), path)
            if block.output not in block.nodes:
                self.diags.error("E032", f"block output '{block.output}' is not a node of block '{block_name}'",
                                 self.raw.value_span(("blocks", block_name, "output")), did_you_mean(block.output, block.nodes))
        order = self.block_orders[block_name]
        if order is None or block.output not in block.nodes:
            return None
        refs = dict(zip(block.inputs, sources))
        scope = _Scope(params, refs, prefix + ".", path, block_name)
        made: list[Node] = []
        for local in order:
            spec = block.nodes[local]
            if spec.op is None:
                self.diags.error("E037", "nodes inside a block must name an 'op' (blocks do not nest yet)",
                                 self.raw.key_span(path + (local,)))
                return None
            node = self._node(f"{prefix}.{local}", spec, scope, path + (local,))
            if node is None:
                return None
            scope.refs[local] = node.name
            made.append(node)
        return BlockInstance(prefix, block_name, sources, made, f"{prefix}.{block.output}")

    # -- one op node ----------------------------------------------------------------
    def _node(self, qname: str, spec: NodeSpec, scope: _Scope, path: tuple) -> Node | None:
        span = self.raw.key_span(path)
        assert spec.op is not None
        record = REGISTRY.get(spec.op)
        if record is None:
            self.diags.error("E030", f"unknown op '{spec.op}'", self.raw.value_span(path + ("op",)), REGISTRY.hint(spec.op))
            return None
        inputs = self._bind_inputs(spec, record, scope, path)
        params = self._op_params(spec, record, scope, path)
        if inputs is None or params is None:
            return None
        shapes = {k: self.shapes.get(v) for k, v in inputs.items()}
        if any(s is None for s in shapes.values()):
            return None  # an upstream error is already reported
        try:
            shape = record.shape(params, shapes)
        except ShapeError as err:
            at = path + (err.param,) if err.param and err.param in spec.op_params() else path + ("in",)
            self.diags.error("E040", f"shape mismatch in '{qname}': {err}", self.raw.value_span(at), self._sources(inputs))
            return None
        ties = self._tie_spec(spec, path)
        for own in ties:
            at = path + ("tie",) if isinstance(spec.tie, str) else path + ("tie", own)
            self.tie_spans[(qname, own)] = self.raw.value_span(at)
        node = Node(qname, spec.op, params, inputs, shape, span, ties, scope.block)
        self.nodes[qname], self.shapes[qname] = node, shape
        return node

    def _sources(self, inputs: dict[str, str]) -> str:
        """Where each input's shape comes from: "x is 'h.1.out' (add) [batch, seq, 32]"."""
        parts = []
        for name, source in inputs.items():
            node = self.nodes.get(source)
            made = f"({node.op})" if node is not None else "(a model input)"
            shape = self.shapes.get(source)
            parts.append(f"{name} is '{source}' {made} {fmt_shape(shape) if shape is not None else ''}".rstrip())
        return "the sizes come from: " + "; ".join(parts)

    def _bind_inputs(self, spec: NodeSpec, record: OpRecord[Any], scope: _Scope, path: tuple) -> dict[str, str] | None:
        names = [i.name for i in record.inputs]
        given: dict[str, str]
        if isinstance(spec.in_, dict):
            given = dict(spec.in_)
            for key in given:
                if key not in names:
                    self.diags.error("E038", f"op '{record.name}' has no input '{key}'", self.raw.key_span(path + ("in", key)),
                                     did_you_mean(key, names) or f"inputs: {', '.join(names)}")
                    return None
        else:
            refs = [spec.in_] if isinstance(spec.in_, str) else list(spec.in_)
            if len(refs) > len(names):
                self.diags.error("E038", f"op '{record.name}' takes at most {len(names)} input(s) ({', '.join(names)}), "
                                 f"got {len(refs)}", self.raw.value_span(path + ("in",)))
                return None
            given = dict(zip(names, refs))
        missing = [i.name for i in record.inputs if not i.optional and i.name not in given]
        if missing:
            self.diags.error("E038", f"op '{record.name}' needs input '{missing[0]}'", self.raw.key_span(path),
                             "add in = ... naming the node it reads")
            return None
        if any(ref not in scope.refs for ref in given.values()):
            return None  # reported by _order
        return {k: scope.refs[v] for k, v in given.items()}

    def _op_params(self, spec: NodeSpec, record: OpRecord[Any], scope: _Scope, path: tuple) -> Any:
        fields = record.params.model_fields
        values: dict[str, Any] = {}
        reported = len(self.diags.items)
        for key, value in spec.op_params().items():
            if isinstance(value, (str, int, float)) and key in fields and not _takes_text(fields[key].annotation):
                value = number(value, scope.params, self.raw, path + (key,), self.diags, None)
            values[key] = value
        if len(self.diags.items) > reported:
            return None  # a bad expression; validating its placeholder would only add noise
        try:
            return record.params.model_validate(values)
        except ValidationError as err:
            # The exceptions of the params' own validators, in order: which parameter to change, and how.
            rules = [e["ctx"]["error"] for e in err.errors() if e["type"] == "value_error"
                     and isinstance(e.get("ctx", {}).get("error"), ParamError)]
            for d in diagnostics_from(err, self.raw, record.params, path):
                if d.code == "E010":
                    d = Diagnostic("E010", f"op '{record.name}' has no parameter '{d.message.split(chr(39))[1]}'", d.span, d.hint)
                elif d.code == "E013":
                    d = Diagnostic("E013", f"op '{record.name}' needs parameter '{d.message.split(chr(39))[1]}'", d.span, d.hint)
                elif d.code == "E014" and "Value error" in d.message:
                    d = self._rule_broken(d, rules.pop(0) if rules else None, spec, path)
                self.diags.extend([d])
            return None

    def _rule_broken(self, d: Diagnostic, rule: ParamError | None, spec: NodeSpec, path: tuple) -> Diagnostic:
        """E041 at the value of the parameter the rule names (the node when the spec leaves it to its default)."""
        message = d.message.split("Value error, ")[-1]
        if rule is None:
            return Diagnostic("E041", message, self.raw.key_span(path), d.hint)
        given = rule.param in spec.op_params()
        span = self.raw.value_span(path + (rule.param,)) if given else self.raw.key_span(path)
        return Diagnostic("E041", message, span, rule.hint)

    def _tie_spec(self, spec: NodeSpec, path: tuple) -> dict[str, str]:
        if spec.tie is None:
            return {}
        return {"weight": spec.tie} if isinstance(spec.tie, str) else dict(spec.tie)

    # -- whole-graph checks -----------------------------------------------------------
    def _outputs(self, scope: _Scope) -> dict[str, str]:
        outputs: dict[str, str] = {}
        for name, ref in self.spec.model.outputs.items():
            if ref in scope.refs:
                outputs[name] = scope.refs[ref]
            elif not self.diags.items:
                self.diags.error("E032", f"output '{name}' reads '{ref}', which is not defined",
                                 self.raw.value_span(("model", "outputs", name)), did_you_mean(ref, scope.refs))
        return outputs

    def _ties(self, groups: list[Group]) -> None:
        for node in list(self.nodes.values()):
            for own, target in list(node.ties.items()):
                resolved = self._tie_target(node, own, target)
                if resolved is None:
                    del node.ties[own]
                else:
                    node.ties[own] = resolved

    def _tie_target(self, node: Node, own: str, target: str) -> str | None:
        span = self.tie_spans.get((node.name, own)) or node.span
        owner_name, _, pname = target.rpartition(".")
        local_prefix = node.name.rsplit(".", 1)[0] + "." if "." in node.name else ""
        owner = self.nodes.get(local_prefix + owner_name) or self.nodes.get(owner_name)
        if own not in node.param_shapes():
            self.diags.error("E042", f"'{node.name}' has no parameter '{own}' to tie", span,
                             did_you_mean(own, node.param_shapes()))
            return None
        if owner is None or pname not in owner.param_shapes():
            self.diags.error("E042", f"tie target '{target}' is not a parameter of this model", span,
                             did_you_mean(target, [f"{n}.{p}" for n, v in self.nodes.items() for p in v.param_shapes()]))
            return None
        if owner.name == node.name or owner.ties.get(pname):
            self.diags.error("E042", f"'{node.name}.{own}' cannot tie to '{target}'", span, "tie to the parameter's owner")
            return None
        mine, theirs = node.param_shapes()[own], owner.param_shapes()[pname]
        if mine != theirs:
            self.diags.error("E042", f"cannot tie '{node.name}.{own}' {list(mine)} to '{target}' {list(theirs)}: shapes differ", span)
            return None
        return f"{owner.name}.{pname}"

    def _unused(self, groups: list[Group], outputs: dict[str, str]) -> None:
        used = set(outputs.values()) | {src for n in self.nodes.values() for src in n.inputs.values()}
        reported: set[str] = set()
        for group in groups:
            ends = {i.output for i in group.instances}
            for node in [group.node] if group.node else [n for i in group.instances for n in i.nodes]:
                if node.name in used or node.name in ends:
                    continue
                key = f"{node.block}.{node.name.rsplit('.', 1)[-1]}" if node.block else node.name
                if key not in reported:
                    reported.add(key)
                    self.diags.error("E034", f"node '{node.name}' is never used", node.span,
                                     "read it from another node, or list it under [model.outputs]")


def _refs(node: NodeSpec) -> list[str]:
    if isinstance(node.in_, str):
        return [node.in_]
    if isinstance(node.in_, dict):
        return list(node.in_.values())
    return list(node.in_)


def _takes_text(annotation: Any) -> bool:
    """Whether a param field is textual (a name, a Literal choice) rather than a number."""
    if annotation is str:
        return True
    if typing.get_origin(annotation) is Literal:
        return True
    return any(_takes_text(a) for a in typing.get_args(annotation))
