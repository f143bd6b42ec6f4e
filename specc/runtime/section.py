"""One base and one validation path for every runtime section.

`[tokenizer]`, `[data]`, `[train]`, each `[objective.NAME]` and each
`[tasks.NAME]` (its `data` and `train` tables included) are `Section` models:
strict (an unknown key is an error, and `compile = 1` is not `true`; an integer
still fits a float field) and frozen. `validate_section` is the only way a spec
table becomes one: it first evaluates `[params]` expressions in every numeric
field at any depth (``steps = "2 * layers"`` in `[train]` and in a task's own
`train` table alike), then validates, reporting every mistake where it is
written.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from specc.diagnostics import Collector
from specc.schema import ModelSpec
from specc.schema.errors import diagnostics_from
from specc.schema.validate import number

__all__ = ["Section", "validate_section"]


class Section(BaseModel):
    """Base of every runtime section's model. Its validator is built the first time a spec's section is validated
    (`defer_build`): `specc check` of a spec builds those of the sections it has, not of every objective and task."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False,
                              defer_build=True)


S = TypeVar("S", bound=BaseModel)


def validate_section(model: type[S], table: Any, spec: ModelSpec, where: tuple, diags: Collector) -> S | None:
    """`table` (written at `where` in the spec) as a `model`, or None with the mistakes added to `diags`."""
    if not isinstance(table, Mapping):
        diags.error("E014", f"'{'.'.join(where)}' must be a table", spec.raw.value_span(where))
        return None
    values = _evaluated(model, table, spec, where, diags)
    try:
        return model.model_validate(values)
    except ValidationError as err:
        diags.extend(diagnostics_from(err, spec.raw, model, where))
        return None


def _evaluated(model: type[BaseModel], table: Mapping[str, Any], spec: ModelSpec, where: tuple, diags: Collector) -> dict[str, Any]:
    """`table` with every expression in a numeric field evaluated over `[params]` (nested tables too)."""
    fields = {f.alias or name: f for name, f in model.model_fields.items()} | dict(model.model_fields)
    out = dict(table)
    for key, value in table.items():
        field = fields.get(key)
        if field is None:
            continue  # pydantic reports the unknown key
        path = where + (key,)
        nested = _model_in(field.annotation)
        if nested is not None and isinstance(value, Mapping):
            out[key] = _evaluated(nested, value, spec, path, diags)
        elif isinstance(value, str) and _numeric(field.annotation):
            reported = len(diags.items)
            out[key] = number(value, spec.params, spec.raw, path, diags, None)
            if len(diags.items) > reported:  # already diagnosed; its placeholder 0 would draw a second, wrong error
                del out[key]
    return out


def _members(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    return (annotation,)


def _numeric(annotation: Any) -> bool:
    """A field that takes a number and no string (so a string there can only be an expression)."""
    members = _members(annotation)
    return str not in members and any(m in (int, float) for m in members)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for m in _members(annotation):
        if isinstance(m, type) and issubclass(m, BaseModel):
            return m
    return None
