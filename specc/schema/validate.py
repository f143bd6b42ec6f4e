"""validate: `RawSpec` → `ModelSpec` (structure checked, global params evaluated)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from pydantic import ValidationError

from specc.diagnostics import Collector, Span
from specc.expr import MAX_INT, ExprError, Number, evaluate, names_in
from specc.ops.base import Dim
from specc.raw import RawSpec
from specc.schema.model import FORMAT_VERSION, RUNTIME_SECTIONS, BlockSpec, NodeSpec, SpecDoc

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Node names become attributes of nn.Modules; these would shadow torch's own.
_RESERVED = frozenset(["forward", "train", "eval", "to", "cuda", "cpu", "float", "half", "double", "state_dict",
                       "parameters", "buffers", "children", "modules", "apply", "zero_grad", "type", "training",
                       "named_parameters", "named_modules", "load_state_dict", "register_buffer", "requires_grad_",
                       "get_submodule", "get_parameter", "extra_repr", "input_names", "output_names", "dump_patches"])
_TYPE = re.compile(r"^\s*(int|float|bool)\s*\[([^\]]*)\]\s*(\?)?\s*$")


@dataclass(frozen=True)
class TensorType:
    """A graph input's declared type, e.g. ``int[batch, seq]`` (optional with `?`)."""

    dtype: str
    dims: tuple[Dim, ...]
    optional: bool = False

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(str(d) for d in self.dims)}]{'?' if self.optional else ''}"


@dataclass(frozen=True)
class GraphSpec:
    inputs: dict[str, TensorType]
    outputs: dict[str, str]
    nodes: dict[str, NodeSpec]


@dataclass
class ModelSpec:
    """A validated spec: params are numbers, nodes are checked for form; spans kept in `raw`."""

    name: str
    format: int
    params: dict[str, Number]
    init_std: float
    seed: int
    blocks: dict[str, BlockSpec]
    model: GraphSpec
    sections: dict[str, dict[str, Any]]
    raw: RawSpec = field(repr=False)
    description: str = ""


def validate(raw: RawSpec) -> ModelSpec:
    """Check a `RawSpec`'s structure and evaluate its `[params]`; all errors at once."""
    diags = Collector()
    _check_format(raw, diags)
    diags.raise_if_any()
    try:
        doc = SpecDoc.model_validate(raw.data)
    except ValidationError as err:
        from specc.schema.errors import diagnostics_from

        diags.extend(diagnostics_from(err, raw, SpecDoc))
        diags.raise_if_any()
        raise AssertionError("unreachable")  # pragma: no cover
    _check_names(doc, raw, diags)
    params = resolve_params(doc.params, raw, ("params",), {}, diags)
    init_std = at_least(0, number(doc.init.std, params, raw, ("init", "std"), diags, float), raw, ("init", "std"), diags)
    seed = at_least(0, number(doc.init.seed, params, raw, ("init", "seed"), diags, int), raw, ("init", "seed"), diags)
    inputs = {name: _tensor_type(text, params, raw, ("model", "inputs", name), diags) for name, text in doc.model.inputs.items()}
    diags.raise_if_any()
    sections = {k: getattr(doc, k) for k in RUNTIME_SECTIONS if getattr(doc, k) is not None}
    graph = GraphSpec({k: v for k, v in inputs.items() if v is not None}, doc.model.outputs, doc.model.nodes)
    return ModelSpec(doc.name, doc.format, params, float(init_std), int(seed), doc.blocks, graph, sections, raw, doc.description)


def _check_format(raw: RawSpec, diags: Collector) -> None:
    version = raw.data.get("format")
    if version is None:
        diags.error("E011", "missing spec format version", raw.file_span(), f"add `format = {FORMAT_VERSION}` at the top")
    elif version != FORMAT_VERSION or isinstance(version, bool):
        diags.error("E012", f"unsupported spec format {version!r}; this specc reads format {FORMAT_VERSION}",
                    raw.value_span(("format",)))


def _check_names(doc: SpecDoc, raw: RawSpec, diags: Collector) -> None:
    groups: list[tuple[tuple, Mapping[str, Any]]] = [(("params",), doc.params), (("model", "nodes"), doc.model.nodes),
                                                      (("model", "inputs"), doc.model.inputs), (("blocks",), doc.blocks)]
    groups += [(("blocks", b, "nodes"), blk.nodes) for b, blk in doc.blocks.items()]
    groups += [(("blocks", b, "params"), blk.params) for b, blk in doc.blocks.items()]
    for prefix, table in groups:
        for name in table:
            if not _NAME.match(name) or name.startswith("_"):
                diags.error("E015", f"'{name}' is not a valid name (letters, digits and _; not starting with a digit or _)",
                            raw.key_span(prefix + (name,)))
            elif name in _RESERVED and prefix[-1] == "nodes":
                diags.error("E015", f"'{name}' is reserved and cannot name a node", raw.key_span(prefix + (name,)))


def resolve_params(
    table: Mapping[str, Any], raw: RawSpec, prefix: tuple, outer: Mapping[str, Number], diags: Collector,
    paths: Mapping[str, tuple] | None = None,
) -> dict[str, Number]:
    """Evaluate a table of params whose values may be expressions over each other and `outer`.

    `paths` gives, per name, where its value is written (for spans) when that is
    not simply `prefix + (name,)` (block parameters set by `with` or overrides).
    """
    done: dict[str, Number] = {}
    where = lambda name: paths[name] if paths and name in paths else prefix + (name,)  # noqa: E731
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done or name not in table:
            return
        span = raw.value_span(where(name))
        if name in visiting:
            cycle = " → ".join(visiting[visiting.index(name):] + [name])
            diags.error("E024", f"parameters depend on each other in a cycle: {cycle}", span)
            done[name] = 0
            return
        value = table[name]
        if isinstance(value, str):
            visiting.append(name)
            try:
                deps = names_in(value)
            except ExprError:
                deps = set()  # the evaluation below reports the syntax error
            for dep in sorted(deps):
                visit(dep)
            visiting.pop()
        if name not in done:
            done[name] = number(value, {**outer, **done}, raw, where(name), diags, None)

    for name in table:
        visit(name)
    return done


def number(value: Any, scope: Mapping[str, Number], raw: RawSpec, path: tuple, diags: Collector, kind: type | None) -> Number:
    """A literal, or an expression string evaluated in `scope`; errors go to `diags`."""
    if isinstance(value, str):
        try:
            value = evaluate(value, scope)
        except ExprError as err:
            hint = err.hint or ("a quoted value is an expression over the spec's params" if err.code == "E023" else None)
            diags.error(err.code, f"in '{'.'.join(map(str, path))}': {err.message}", _within(raw.value_span(path), value, err),
                        hint)
            return 0
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and not _in_range(value):
        diags.error("E021", f"'{'.'.join(map(str, path))}' is out of range: {value!r}", raw.value_span(path),
                    "numbers must be finite and smaller than 2**63")
        return 0
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        diags.error("E014", f"'{'.'.join(map(str, path))}' must be an integer, got {value!r}", raw.value_span(path))
        return 0
    if kind is float and isinstance(value, bool):
        diags.error("E014", f"'{'.'.join(map(str, path))}' must be a number, got {value!r}", raw.value_span(path))
        return 0
    return value


def at_least(low: Number, value: Number, raw: RawSpec, path: tuple, diags: Collector) -> Number:
    """`value` if it is at least `low`; else a diagnostic at the value and `low` (so one mistake says one thing)."""
    if value < low:
        diags.error("E014", f"'{'.'.join(map(str, path))}': Input should be greater than or equal to {low}, got {value!r}",
                    raw.value_span(path))
        return low
    return value


def _in_range(value: int | float) -> bool:
    return abs(value) <= MAX_INT if isinstance(value, int) else math.isfinite(value)


def _within(span: Span | None, text: str, err: ExprError) -> Span | None:
    """The part of a quoted expression's span that `err` points at (the whole value if unsure)."""
    if span is None or err.column is None or span.line <= 0 or span.end_col - span.col != len(text) + 2:
        return span  # not a plain one-line "..." string (escapes, or from the command line)
    start = span.col + err.column  # the opening quote is at span.col
    return replace(span, col=start, end_col=start + err.width)


def _tensor_type(text: str, params: Mapping[str, Number], raw: RawSpec, path: tuple, diags: Collector) -> TensorType | None:
    match = _TYPE.match(text)
    span = raw.value_span(path)
    if not match:
        diags.error("E016", f"bad input type '{text}'", span, "write e.g. int[batch, seq] or float[batch, seq, d_model]")
        return None
    dims: list[Dim] = []
    for part in (p.strip() for p in match.group(2).split(",")) if match.group(2).strip() else ():
        if part.isdigit():
            dims.append(int(part))
        elif _NAME.match(part):
            value = params.get(part, part)
            dims.append(value if isinstance(value, int) and not isinstance(value, bool) else part)
        else:
            diags.error("E016", f"bad dimension '{part}' in input type", span)
    return TensorType(match.group(1), tuple(dims), bool(match.group(3)))

