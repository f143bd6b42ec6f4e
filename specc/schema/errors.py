"""Turn pydantic validation errors into span-carrying diagnostics."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from specc.diagnostics import Diagnostic, did_you_mean
from specc.raw import RawSpec

_TYPE_NAMES = {
    "int_type": "an integer", "int_parsing": "an integer", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "a string",
    "dict_type": "a table", "list_type": "an array", "model_type": "a table", "int_from_float": "an integer",
}


def diagnostics_from(err: ValidationError, raw: RawSpec, root: type[BaseModel], prefix: tuple = ()) -> list[Diagnostic]:
    """One diagnostic per pydantic error, located through `raw`'s span index."""
    out: list[Diagnostic] = []
    seen: set[tuple] = set()
    base = _at(raw.data, prefix)
    # A misspelt key ('ouput') also makes the key it meant ('output') missing; say it once, as the misspelling.
    meant: set[tuple] = set()
    for e in err.errors():
        if e["type"] == "extra_forbidden":
            loc = _clean_loc(e["loc"], base)
            close = difflib.get_close_matches(str(loc[-1]), _fields_at(root, loc[:-1]), n=1, cutoff=0.6)
            meant.update(loc[:-1] + (c,) for c in close)
    kinds_at: dict[tuple, list[str]] = {}
    for e in err.errors():
        if e["type"] not in ("extra_forbidden", "missing"):
            kinds_at.setdefault(prefix + _clean_loc(e["loc"], base), []).append(e["type"])
    # Paths with an error deeper inside them (every proper prefix of an error's path): a set, so that an array of
    # thousands of wrong items costs linear time, not quadratic.
    above = {q[:i] for q in kinds_at for i in range(len(q))}
    for e in err.errors():
        loc = _clean_loc(e["loc"], base)
        path = prefix + loc
        kind = e["type"]
        if kind == "extra_forbidden":
            known = _fields_at(root, loc[:-1])
            out.append(Diagnostic("E010", f"unknown key '{loc[-1]}'", raw.key_span(path), did_you_mean(str(loc[-1]), known)))
        elif kind == "missing" and loc not in meant:
            out.append(Diagnostic("E013", f"missing required key '{loc[-1]}'", raw.key_span(path[:-1]) or raw.file_span()))
        elif kind != "missing":
            # A union reports once per member: say once what each member would take. A member that got
            # further into the value (an array of the wrong items) reports deeper; that message wins.
            if path in seen or path in above:
                continue
            seen.add(path)
            wants = [w for w in dict.fromkeys(_TYPE_NAMES.get(k) for k in kinds_at[path]) if w]
            what = ", ".join(wants[:-1]) + " or " + wants[-1] if len(wants) > 1 else wants[0] if wants else None
            got = _describe(e.get("input"))
            message = f"'{_dotted(path)}' must be {what}, got {got}" if what else f"'{_dotted(path)}': {e['msg']}"
            if kind in _BOUNDS and isinstance(e.get("input"), (int, float)):  # a number outside its domain: say which
                message += f", got {e['input']!r}"
            out.append(Diagnostic("E014", message, raw.value_span(path)))
    return out


_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of"}


_TAGS = {"str", "int", "float", "bool", "none"}


def _clean_loc(loc: tuple, value: Any) -> tuple:
    """Drop pydantic's union-member tags such as 'str' or 'list[str]' from a location. `value` is the validated
    input the location walks: a part that is one of its keys is the user's (a key may be called 'int'), not a tag."""
    out = []
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        elif isinstance(part, str) and (part in _TAGS or "[" in part):
            continue
        else:
            value = None
        out.append(part)
    return tuple(out)


def _at(data: Any, path: tuple) -> Any:
    """The raw value at `path`, or None where the path leaves the tree."""
    for part in path:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    name = kinds.get(type(value), type(value).__name__)
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) < 40):
        return f"{name} ({value!r})" if not isinstance(value, str) else f"{name} ('{value}')"
    return name


def _fields_at(root: type[BaseModel], loc: tuple) -> list[str]:
    """Field names (and aliases) of the model reached by following `loc` from `root`."""
    annotation: Any = root
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _model_in(annotation)
    if model is None:
        return []
    names = list(model.model_fields)
    names += [f.alias for f in model.model_fields.values() if f.alias]
    return [n for n in names if not n.endswith("_")]


def _step(annotation: Any, part: Any) -> Any:
    model = _model_in(annotation)
    if model is not None and isinstance(part, str):
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    for arg in _args(annotation):
        origin = typing.get_origin(arg)
        if origin is dict and isinstance(part, str):
            return typing.get_args(arg)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(arg)[0]
    return None


def _args(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(types, "UnionType", None)):  # UnionType (`int | str`) is new in 3.10
        return list(typing.get_args(annotation))
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for arg in _args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None
