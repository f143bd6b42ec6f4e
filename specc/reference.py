"""The reference of what a spec can name: ops, objectives and task types (`specc ops`, docs/ops.md).

Everything here is read from the registries' own records (the op records'
parameter schemas with their field descriptions, shape rules and examples; the
objective and task records), so the reference cannot drift from the code:
tests/test_reference.py fails when docs/ops.md differs from `specc ops
--markdown`. Nothing here imports torch.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen, MultipleOf
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from specc.frontend import spelling
from specc.ops import REGISTRY, OpRecord


@dataclass(frozen=True)
class ParamDoc:
    name: str
    type: str  # e.g. "int > 0", "gelu | relu", "float or none"
    default: str  # "required", or the default as a spec writes it
    meaning: str


@dataclass(frozen=True)
class Entry:
    """One op, objective or task type, as the reference shows it."""

    kind: Literal["op", "objective", "task type"]
    name: str
    doc: str
    needs: list[tuple[str, str]]  # (what, names): an op's inputs, what an objective or task needs from the graph
    params: list[ParamDoc]
    toml: str  # an example, as a TOML spec writes it
    dsl: str  # the same in the DSL
    shape_rule: str = ""


# -- reading the records --------------------------------------------------------------------------
def type_text(annotation: Any) -> str:
    """A field's type as a spec writer reads it: `int`, `rotary | alibi | none`, `float or none`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        text = " or ".join(type_text(a) for a in kept)
        return f"{text} or none" if len(kept) < len(args) else text
    if origin is list:
        return f"list of {type_text(args[0])}" if args else "list"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = ((Gt, "gt", ">"), (Ge, "ge", "≥"), (Lt, "lt", "<"), (Le, "le", "≤"), (MultipleOf, "multiple_of", "multiple of"),
           (MinLen, "min_length", "at least"), (MaxLen, "max_length", "at most"))


def bounds_text(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for kind, attr, word in _BOUNDS:
            if isinstance(item, kind):
                parts.append(f"{word} {getattr(item, attr)}" + (" items" if kind in (MinLen, MaxLen) else ""))
    return ", ".join(parts)


def value_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return spelling.number_text(value)
    if isinstance(value, str):
        return spelling.quote(value)
    if isinstance(value, BaseModel):
        return "(a table)"
    return str(value)


def param_docs(model: type[BaseModel], skip: Iterable[str] = ()) -> list[ParamDoc]:
    out = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kind = type_text(field.annotation)
        bounds = bounds_text(field)
        if field.is_required():
            default = "required"
        elif field.default_factory is not None:
            default = value_text(field.default_factory())  # type: ignore[call-arg]
        else:
            default = value_text(field.default if field.default is not PydanticUndefined else None)
        out.append(ParamDoc(field.alias or name, f"{kind} ({bounds})" if bounds else kind, default, field.description or ""))
    return out


def example_lines(node: str, body: dict[str, Any]) -> tuple[str, str]:
    """(TOML, DSL) of one node of a model, printed by the formatters `specc fmt` uses."""
    from specc.frontend.print_dsl import dsl_lines  # with the DSL's parser: the overview prints no example
    from specc.frontend.print_toml import toml_lines

    data = {"model": {"nodes": {node: body}}}
    toml = [line.text for line in toml_lines(data, lambda path, value: None) if line.path == ("model", "nodes", node)]
    dsl = [line.text for line in dsl_lines(data, lambda path, value: None)][1:-1]  # inside `model { ... }`
    return "\n".join(toml), "\n".join(line[2:] for line in dsl)


def op_entry(record: OpRecord[Any]) -> Entry:
    inputs = ", ".join(f"{i.name} (optional)" if i.optional else i.name for i in record.inputs)
    toml = dsl = ""
    if record.example is not None:
        ex = record.example
        sources: Any = dict(ex.inputs) if isinstance(ex.inputs, dict) else list(ex.inputs)
        if isinstance(sources, list) and len(sources) == 1:
            sources = sources[0]
        toml, dsl = example_lines(ex.node, {"op": record.name, "in": sources, **ex.params})
    return Entry("op", record.name, record.doc, [("inputs", inputs)], param_docs(record.params), toml, dsl,
                 record.shape_rule)


def objective_entries() -> list[Entry]:
    from specc.runtime.objectives import OBJECTIVES

    out = []
    for record in sorted(OBJECTIVES.values(), key=lambda r: r.name):
        needs = [("model inputs it feeds", ", ".join(record.inputs))]
        if record.optional_inputs:
            needs.append(("fed too when the model declares them", ", ".join(record.optional_inputs)))
        needs.append(("model outputs it reads", ", ".join(record.outputs)))
        needs.append(("batch layout", record.layout))
        out.append(Entry("objective", record.name, record.doc, needs, param_docs(record.params),
                         f"[objective.{record.name}]", f"objective.{record.name} {{}}"))
    return out


def task_entries() -> list[Entry]:
    from specc.runtime.tasks.base import TASKS, TaskParams

    common = TaskParams.model_fields
    out = []
    for task in sorted(TASKS.values(), key=lambda t: t.name):
        runner = task.runner
        needs = [("model inputs it feeds", ", ".join(runner.inputs)),
                 ("model output it reads", "the one its `head` key names"),
                 ("metrics", ", ".join(runner.default_metrics))]
        data = task.params.model_fields["data"].annotation
        fields = ", ".join(f"{p.name} (default {p.default})" for p in param_docs(data)
                           if p.name not in _data_common()) if isinstance(data, type) else ""
        if fields:
            needs.append(("record fields", fields))
        toml = f'[tasks.NAME]\ntype = "{task.name}"\nhead = "OUTPUT"'
        dsl = f"tasks.NAME {{\n  type = {task.name}\n  head = OUTPUT\n}}"
        inherited = [n for n, f in task.params.model_fields.items() if n in common and f.default == common[n].default
                     and n != "data"]  # a type's own data fields are listed above
        out.append(Entry("task type", task.name, task.doc, needs, param_docs(task.params, [*inherited, "data"]),
                         toml, dsl))
    return out


def _data_common() -> set[str]:
    from specc.runtime.tasks.base import TaskData

    return set(TaskData.model_fields)


def common_task_keys() -> list[ParamDoc]:
    """Keys every ``[tasks.NAME]`` table may hold, whatever its type."""
    from specc.runtime.tasks.base import TaskParams

    return param_docs(TaskParams)


def entries() -> list[Entry]:
    ops = [op_entry(REGISTRY[name]) for name in sorted(REGISTRY)]
    return ops + objective_entries() + task_entries()


def listing() -> list[tuple[str, str, str]]:
    """(kind, name, doc) of every entry, in `entries()`'s order: what the overview shows, read without printing
    the examples (which builds the DSL's parser)."""
    from specc.runtime.objectives import OBJECTIVES
    from specc.runtime.tasks.base import TASKS

    return ([("op", name, REGISTRY[name].doc) for name in sorted(REGISTRY)]
            + [("objective", r.name, r.doc) for r in sorted(OBJECTIVES.values(), key=lambda r: r.name)]
            + [("task type", t.name, t.doc) for t in sorted(TASKS.values(), key=lambda t: t.name)])


def find(name: str) -> list[Entry]:
    """The entries named `name` (an op and an objective may share a name): only those kinds' entries are built."""
    from specc.runtime.objectives import OBJECTIVES
    from specc.runtime.tasks.base import TASKS

    found = [op_entry(REGISTRY[name])] if name in REGISTRY else []
    found += [e for e in objective_entries() if e.name == name] if name in OBJECTIVES else []
    return found + ([e for e in task_entries() if e.name == name] if name in TASKS else [])


# -- rendering ------------------------------------------------------------------------------------
def overview() -> str:
    """One line per op, objective and task type (`specc ops`)."""
    lines: list[str] = []
    every = listing()
    for kind, title in (("op", "Ops"), ("objective", "Objectives ([objective.NAME])"), ("task type", "Task types "
                                                                                        "([tasks.NAME] type = ...)")):
        group = [(name, doc) for entry_kind, name, doc in every if entry_kind == kind]
        width = max(len(name) for name, _ in group)
        lines += [f"{title}:"] + [f"  {name:<{width}}  {doc}" for name, doc in group] + [""]
    lines.append("`specc ops NAME` shows one in full (inputs, parameters, shape rule, an example in TOML and DSL); "
                 "`specc ops --markdown` writes docs/ops.md.")
    return "\n".join(lines)


def detail(entry: Entry) -> str:
    """One entry in full, as plain text (`specc ops NAME`)."""
    lines = [f"{entry.name} ({entry.kind}): {entry.doc}", ""]
    lines += [f"  {what}: {names or '-'}" for what, names in entry.needs]
    if entry.shape_rule:
        lines.append(f"  output shape: {entry.shape_rule}")
    lines += ["", "  parameters:" if entry.params else "  parameters: none"]
    width = max((len(p.name) for p in entry.params), default=0)
    for p in entry.params:
        lines.append(f"    {p.name:<{width}}  {p.type}, default {p.default}" + (f": {p.meaning}" if p.meaning else ""))
    if entry.toml:
        lines += ["", "  TOML:", *("    " + line for line in entry.toml.splitlines()),
                  "  DSL:", *("    " + line for line in entry.dsl.splitlines())]
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_entry(entry: Entry) -> list[str]:
    out = [f"### `{entry.name}`", "", entry.doc, ""]
    out += [f"- **{what}**: {_md_cell(names) or '—'}" for what, names in entry.needs]
    if entry.shape_rule:
        out.append(f"- **output shape**: {_md_cell(entry.shape_rule)}")
    out.append("")
    if entry.params:
        out += ["| parameter | type | default | meaning |", "| --- | --- | --- | --- |"]
        out += [f"| `{p.name}` | {_md_cell(p.type)} | {_md_cell(p.default)} | {_md_cell(p.meaning)} |" for p in entry.params]
        out.append("")
    if entry.toml:
        out += ["```toml", entry.toml, "```", "", "```", entry.dsl, "```", ""]
    return out


def markdown() -> str:
    """docs/ops.md."""
    all_entries = entries()
    out = ["# Ops, objectives and task types", "",
           "<!-- Generated by `specc ops --markdown > docs/ops.md` from the registries' records; "
           "tests/test_reference.py fails when it differs. Do not edit by hand. -->", "",
           "What a spec can name. Each op lists its inputs (a node passes them in this order, or by name),",
           "its parameters, the rule that gives its output shape, and one node using it, in TOML and in the DSL.",
           "Parameters take numbers, booleans, names of `[params]` values, or expressions of them.", ""]
    for kind, title, intro in (
        ("op", "Ops", []),
        ("objective", "Objectives", ["Declared as `[objective.NAME]` (several are summed, each times its `weight`). "
                                     "Each names what it needs from the graph; `specc check` reports what is missing "
                                     "with the line to add.", ""]),
        ("task type", "Task types", ["Declared as `[tasks.NAME]` with `type = ...` and `head = ...` (the model "
                                     "output the task reads); see docs/training.md. Keys every task takes:", ""]),
    ):
        group = [e for e in all_entries if e.kind == kind]
        out += [f"## {title}", "", *intro]
        if kind == "task type":
            out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
            out += [f"| `{p.name}` | {_md_cell(p.type)} | {_md_cell(p.default)} | {_md_cell(p.meaning)} |"
                    for p in common_task_keys()]
            out += ["", "Each type's own keys follow.", ""]
        out += [" · ".join(f"[`{e.name}`](#{e.name})" for e in group), ""]
        for e in group:
            out += _md_entry(e)
    return "\n".join(out).rstrip() + "\n"
