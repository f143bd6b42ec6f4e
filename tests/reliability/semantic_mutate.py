"""Mutations that keep a spec parseable and change what it means (the semantic fuzzer's input side).

A seed is a reference spec resolved into one table (its `extends` chain
merged). A mutant is that table with one to three changes, written back as
TOML; each change has a label (``value:train.lr=-1``, ``drop:model.outputs``)
that the campaign counts by kind.

- *values*, per field type: every field a section's schema declares (present
  in the seed or not) and every value the seed writes: zero, negative, huge,
  fractional where integral, the wrong type, an expression that yields an odd
  value (complex, inf, a division by zero), an empty string, an unknown enum
  member;
- *structure*: drop a key (required ones often), point a reference (a node's
  input, an output, a task's head, a block) at a missing node, make blocks or
  nodes depend on themselves, drop or rename a whole section;
- *text*: duplicate a key line or a table header (TOML refuses both).

Some mutants are written as a small spec that `extends` the seed, and some
carry their value changes as `--set` arguments, so that spans in a base file
and on the command line are exercised too.
"""

from __future__ import annotations

import math
import random
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

from pydantic import BaseModel

Path_ = tuple[str, ...]

# -- value pools, per field type -----------------------------------------------------------------
EXPRESSIONS = ['"(-1) ** 0.5"', '"(-8) ** (1.0 / 3)"', '"1 / 0"', '"1.0 / 0"', '"1e308 * 10"', '"1e308 // 1e-308"',
               '"0 ** -1"', '"sqrt(-1)"', '"2 ** 64"', '"9 ** 9 ** 9"', '"int(1e300)"', '"-(2 ** 62) * 4"', '"true"',
               '"false"', '"vocab"', '"d_model / 7"', '"d_model * 0"', '"-d_model"', '"0.5 * 3"', '"unknown_param"',
               '"min()"', '"2 ** -1074"', '"1e-320"', '"3 % 0"', '"layers - layers"', '""', '" "', '"("']
INTS = ["0", "-1", "1", "2", "3", "-2147483648", "2147483648", "4611686018427387904", "9223372036854775807",
        "1000000", "1.5", "0.0", "-0.5", "2.0", "true", "false", "nan", "inf", "-inf", "1e308", "[1]", "{ a = 1 }",
        '"abc"', '"2 * 3"', '"2.5 * 2"']
FLOATS = ["0", "0.0", "-0.0", "-1", "-1e-9", "1e-320", "5e-324", "1", "0.5", "0.999999999", "1.0", "2.0", "1e308",
          "1e300", "1.7976931348623157e308", "nan", "-nan", "inf", "-inf", "true", "[0.5]", "{ a = 0.5 }", '"x"',
          '"2 ** -1"', '"std * 100"']
BOOLS = ["0", "1", '"true"', '"yes"', "[]", "{}", "-1", "nan"]
STRINGS = ['""', '" "', '"missing_node"', '"../../../../etc/passwd"', '"/dev/null"', '"a\\u0000b"', '"\\n"', "0", "-1",
           "true", "[]", "{}", '"' + "a" * 5000 + '"', '"ü✓"', '"none"', '"auto"']
LISTS = ["[]", "[[]]", "[1]", '["x"]', "[2.0, 2.0]", "[nan, 0.9]", "[0.9]", "[0.9, 0.95, 0.99]", "[-1, 0.5]",
         "[1.0, 1.0]", "[0.9, 1.0]", "[0.0, 0.0]", "[inf, 0.9]", '["0.9", "0.95"]', "0.9", '"bias"', "{ a = 1 }",
         '["bias", "bias"]', '["missing_node"]', "[" + ", ".join(["1"] * 2000) + "]"]
TABLES = ["1", '"x"', "[]", "{}", "{ unknown = 1 }", "true"]
NAME_REFS = ['"missing_node"', '"h2"', '""', '"tokens"', '"x"', '"mask"', '"embed "', '"model"', '"in"']


@dataclass(frozen=True)
class Field_:
    """One field a mutation may set: where, and what type it takes (enum members for a Literal)."""

    path: Path_
    kind: str  # "int" | "float" | "bool" | "str" | "enum" | "list" | "table" | "ref"
    members: tuple[Any, ...] = ()


@dataclass
class Mutant:
    """A mutated spec: the table to write, edits to its text, `--set` arguments, and what was done."""

    seed: str
    data: dict[str, Any]
    labels: list[str] = field(default_factory=list)
    values: list[tuple[Path_, str]] = field(default_factory=list)  # the value changes: path and TOML literal
    text_edits: list[str] = field(default_factory=list)  # "dup_line" | "dup_header"
    sets: list[str] = field(default_factory=list)
    overlay: dict[str, Any] | None = None  # written as a spec that extends the seed's file (then `data` is unused)

    @property
    def kinds(self) -> list[str]:
        return [label.split(":", 1)[0] for label in self.labels]


# -- the fields of a seed --------------------------------------------------------------------------
def _members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for a in typing.get_args(annotation) for m in _members(a)]
    return [annotation]


def kind_of(annotation: Any) -> tuple[str, tuple[Any, ...], type[BaseModel] | None]:
    """The mutation kind of a pydantic field annotation, its enum members, and a nested model if it has one."""
    members = [m for m in _members(annotation) if m is not type(None)]
    for m in members:
        if typing.get_origin(m) is Literal:
            return "enum", typing.get_args(m), None
        if isinstance(m, type) and issubclass(m, BaseModel):
            return "table", (), m
    for name, t in (("bool", bool), ("int", int), ("float", float)):
        if t in members:
            return name, (), None
    if any(typing.get_origin(m) in (list, tuple) for m in members):
        return "list", (), None
    if any(typing.get_origin(m) is dict for m in members):
        return "table", (), None
    return "str", (), None


def schema_fields(model: type[BaseModel], prefix: Path_) -> Iterator[Field_]:
    for name, info in model.model_fields.items():
        key = info.alias or name
        kind, members, nested = kind_of(info.annotation)
        yield Field_(prefix + (key,), kind, members)
        if nested is not None:
            yield from schema_fields(nested, prefix + (key,))


def seed_fields(data: dict[str, Any]) -> list[Field_]:
    """Every field of `data`'s sections (their schemas') and of its nodes (their ops'), and every value it writes."""
    from specc.graph.adapters import AdaptersSpec
    from specc.ops import REGISTRY
    from specc.runtime.config import DataConfig, TokenizerConfig, TrainConfig
    from specc.runtime.objectives import OBJECTIVES
    from specc.runtime.tasks import TASKS
    from specc.schema.model import InitSpec

    found: dict[Path_, Field_] = {}
    for model, where in ((InitSpec, "init"), (TokenizerConfig, "tokenizer"), (DataConfig, "data"), (TrainConfig, "train")):
        found.update((f.path, f) for f in schema_fields(model, (where,)))
    if "adapters" in data:  # (no other seed declares adapters: LoRA fields are for specs that use them)
        found.update((f.path, f) for f in schema_fields(AdaptersSpec, ("adapters",)))
    for name in (data.get("objective") or {}):
        if name in OBJECTIVES:
            found.update((f.path, f) for f in schema_fields(OBJECTIVES[name].params, ("objective", name)))
    for name, task in (data.get("tasks") or {}).items():
        if isinstance(task, dict) and task.get("type") in TASKS:
            found.update((f.path, f) for f in schema_fields(TASKS[task["type"]].params, ("tasks", name)))
    for prefix, nodes in _node_tables(data):
        for name, node in nodes.items():
            if isinstance(node, dict) and node.get("op") in REGISTRY:
                found.update((f.path, f) for f in schema_fields(REGISTRY[node["op"]].params, prefix + (name,)))
            for key in ("in", "block", "tie"):
                found[prefix + (name, key)] = Field_(prefix + (name, key), "ref")
    for path, value in _leaves(data, ()):
        if path not in found:
            found[path] = Field_(path, _kind_of_value(value))
    for out in (data.get("model") or {}).get("outputs") or {}:
        found[("model", "outputs", out)] = Field_(("model", "outputs", out), "ref")
    return sorted(found.values(), key=lambda f: f.path)


def _node_tables(data: dict[str, Any]) -> Iterator[tuple[Path_, dict[str, Any]]]:
    nodes = (data.get("model") or {}).get("nodes")
    if isinstance(nodes, dict):
        yield ("model", "nodes"), nodes
    for name, block in (data.get("blocks") or {}).items():
        if isinstance(block, dict) and isinstance(block.get("nodes"), dict):
            yield ("blocks", name, "nodes"), block["nodes"]


def _leaves(value: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (str(k),))
    elif path:
        yield path, value


def _kind_of_value(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(type(value), "table")


# -- mutations -------------------------------------------------------------------------------------
def literal(text: str) -> Any:
    """A TOML literal (as the pools write them) read as a value."""
    import tomllib

    return tomllib.loads(f"v = {text}")["v"]


def value_for(f: Field_, rng: random.Random) -> str:
    """A hostile TOML literal for field `f`."""
    if rng.random() < 0.2:
        return rng.choice(EXPRESSIONS)
    if f.kind == "enum":
        choices = ['""', '"unknown"', "1", "true", "[]"] + [f'"{str(m).upper()}"' for m in f.members[:2]]
        choices += [f'" {m}"' for m in f.members[:1]] + [f'"{m}"' for m in f.members]  # valid members too
        return rng.choice(choices)
    pool = {"int": INTS, "float": FLOATS, "bool": BOOLS, "str": STRINGS, "list": LISTS, "table": TABLES,
            "ref": NAME_REFS}[f.kind]
    return rng.choice(pool)


def set_path(data: dict[str, Any], path: Path_, value: Any) -> bool:
    """Set `path` in `data`, creating tables on the way; False where a non-table is in the way."""
    node: Any = data
    for key in path[:-1]:
        nxt = node.get(key) if isinstance(node, dict) else None
        if nxt is None:
            nxt = node[key] = {}
        if not isinstance(nxt, dict):
            return False
        node = nxt
    node[path[-1]] = value
    return True


def get_path(data: dict[str, Any], path: Path_) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def drop_path(data: dict[str, Any], path: Path_) -> bool:
    parent = get_path(data, path[:-1]) if len(path) > 1 else data
    if isinstance(parent, dict) and path[-1] in parent:
        del parent[path[-1]]
        return True
    return False


REQUIRED = [("format",), ("model",), ("model", "inputs"), ("model", "outputs"), ("model", "nodes"), ("params",),
            ("objective",), ("train",), ("tokenizer",), ("data",), ("tasks",), ("init",), ("blocks",)]


def _mut_value(m: Mutant, fields: list[Field_], rng: random.Random) -> None:
    # a section first, then one of its fields: the ops' many fields would otherwise drown [init] and [data]
    groups: dict[str, list[Field_]] = {}
    for f in fields:
        groups.setdefault("ops" if f.path[0] in ("model", "blocks") else f.path[0] if len(f.path) > 1 else "top", []).append(f)
    f = rng.choice(groups[rng.choice(sorted(groups))])
    text = value_for(f, rng)
    if set_path(m.data, f.path, literal(text)):
        m.labels.append(f"value:{'.'.join(f.path)}={text[:40]}")
        m.values.append((f.path, text))


def _mut_drop(m: Mutant, fields: list[Field_], rng: random.Random) -> None:
    if rng.random() < 0.4:
        path = rng.choice(REQUIRED)
    else:
        nodes = [p + (n, k) for p, t in _node_tables(m.data) for n, node in t.items() if isinstance(node, dict)
                 for k in ("op", "in", "block", "inputs")]
        blocks = [("blocks", b, k) for b in (m.data.get("blocks") or {}) for k in ("inputs", "output", "nodes")]
        tasks = [("tasks", t, k) for t in (m.data.get("tasks") or {}) for k in ("type", "head", "data", "train")]
        path = rng.choice(nodes + blocks + tasks + [p for p, _ in _leaves(m.data, ())])
    if drop_path(m.data, path):
        m.labels.append(f"drop:{'.'.join(path)}")


def _mut_dangling(m: Mutant, fields: list[Field_], rng: random.Random) -> None:
    refs = [f for f in fields if f.kind == "ref"] + [Field_(("tasks", t, "head"), "ref") for t in m.data.get("tasks") or {}]
    refs += [Field_(("train", "activation_checkpointing"), "list")]
    f = rng.choice(refs)
    missing = rng.choice(["missing_node", "embedd", "h_", "logits2", "lm_head.x"])
    value: Any = [missing] if f.kind == "list" else missing
    current = get_path(m.data, f.path)
    if isinstance(current, dict) and current:  # named inputs: point one of them elsewhere
        value = {**current, rng.choice(sorted(current)): missing}
    elif isinstance(current, list) and current:
        value = [missing] + current[1:]
    if set_path(m.data, f.path, value):
        m.labels.append(f"dangling:{'.'.join(f.path)}")


def _mut_cycle(m: Mutant, fields: list[Field_], rng: random.Random) -> None:
    blocks = [b for b, v in (m.data.get("blocks") or {}).items() if isinstance(v, dict) and isinstance(v.get("nodes"), dict)]
    if blocks and rng.random() < 0.6:
        a, b = rng.choice(blocks), rng.choice(blocks)
        block = m.data["blocks"][a]
        inputs = block.get("inputs") if isinstance(block.get("inputs"), list) else ["x"]
        block["nodes"]["loop"] = {"block": b, "in": list(inputs)}
        block["output"] = "loop"
        m.labels.append(f"cycle:blocks.{a}->{b}")
        return
    tables = [(p, t) for p, t in _node_tables(m.data) if len(t) >= 2]
    if not tables:
        return _mut_dangling(m, fields, rng)
    prefix, nodes = rng.choice(tables)
    names = [n for n, v in nodes.items() if isinstance(v, dict)]
    first, second = rng.choice(names), rng.choice(names)
    nodes[first]["in"] = second  # with `second` fed (directly or not) by `first`, or `first` itself: a cycle
    if isinstance(nodes[second], dict) and first != second:
        nodes[second]["in"] = first
    m.labels.append(f"cycle:{'.'.join(prefix)}.{first}<->{second}")


def _mut_section(m: Mutant, fields: list[Field_], rng: random.Random) -> None:
    """Rename a section or an entry of one (unknown objective, task type, op), or move one into another's place."""
    action = rng.randrange(5)
    objective = m.data.get("objective")
    if action == 0 and isinstance(objective, dict) and objective:
        name = rng.choice(sorted(objective))
        objective[rng.choice([name + "s", "causal_llm", "mlm2", ""])] = objective.pop(name)
        m.labels.append(f"section:objective.{name} renamed")
    elif action == 1 and isinstance(m.data.get("tasks"), dict) and m.data["tasks"]:
        name = rng.choice(sorted(m.data["tasks"]))
        if isinstance(m.data["tasks"][name], dict):
            m.data["tasks"][name]["type"] = rng.choice(["classificaton", "qa", "", "translation", "tagging", "regression"])
            m.labels.append(f"section:tasks.{name}.type")
    elif action == 2:
        ops = [(p + (n, "op")) for p, t in _node_tables(m.data) for n, v in t.items() if isinstance(v, dict) and "op" in v]
        if ops:
            path = rng.choice(ops)
            set_path(m.data, path, rng.choice(["atention", "linear", "layer_norm", "lm_head", "embedding", "dropout"]))
            m.labels.append(f"section:{'.'.join(path)}")
    elif action == 3:
        a, b = rng.sample(["train", "data", "tokenizer", "init", "objective", "params"], 2)
        if a in m.data:
            m.data[b] = m.data.pop(a)
            m.labels.append(f"section:{a}->{b}")
    else:
        section = rng.choice(["train", "data", "tokenizer", "init"])
        m.data.setdefault(section, {})
        if isinstance(m.data[section], dict):
            m.data[section][rng.choice(["lrr", "step", "batchsize", "kind2", "std_dev", "0"])] = 1
            m.labels.append(f"section:{section}.unknown_key")


def _mut_text(m: Mutant, fields: list[Field_], rng: random.Random) -> None:
    edit = rng.choice(["dup_line", "dup_header"])
    m.text_edits.append(edit)
    m.labels.append(f"text:{edit}")


STRUCTURE = [_mut_drop, _mut_dangling, _mut_cycle, _mut_section, _mut_text]


def mutate(seed: str, data: dict[str, Any], fields: list[Field_], rng: random.Random) -> Mutant:
    """One mutant of `data`: mostly value changes, some structural ones."""
    import copy

    m = Mutant(seed, copy.deepcopy(data))
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if rng.random() < 0.65:
            _mut_value(m, fields, rng)
        else:
            rng.choice(STRUCTURE)(m, fields, rng)
    form = rng.random()
    value_only = m.kinds and all(k == "value" for k in m.kinds)
    if value_only and form < 0.15:  # the same changes as --set arguments on the seed's own file
        m.sets = [f"{'.'.join(path)}={text}" for path, text in m.values]
        m.data = {}
    elif value_only and form < 0.3:  # as a spec that extends the seed's file
        m.overlay = {}
        for path, text in m.values:
            set_path(m.overlay, path, literal(text))
    if not m.labels:
        m.labels.append("none:unchanged")
    return m


# -- writing TOML ----------------------------------------------------------------------------------
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(k: str) -> str:
    return k if _BARE.match(k) else _string(k)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def inline(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key(k)} = {inline(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    """`data` as TOML: top-level values, then a [table] per table whose values are not all tables (those nest)."""
    lines: list[str] = []
    _table(data, (), lines)
    return "\n".join(lines) + "\n"


def _table(table: dict[str, Any], path: Path_, lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not _is_section(v, path + (k,))}
    if path and (scalars or not table):
        lines.append("")
        lines.append("[" + ".".join(key(p) for p in path) + "]")
    lines.extend(f"{key(k)} = {inline(v)}" for k, v in scalars.items())
    for k, v in table.items():
        if k not in scalars:
            _table(v, path + (k,), lines)


def _is_section(value: Any, path: Path_) -> bool:
    """Tables are written as [headers] down to a node (whose table is inline, as the reference specs write them)."""
    if not isinstance(value, dict):
        return False
    return not (len(path) >= 3 and path[-2] == "nodes")


def edit_text(text: str, edit: str, rng: random.Random) -> str:
    """A duplicated `key = value` line or [table] header (TOML refuses both: a syntax diagnostic)."""
    lines = text.split("\n")
    pattern = r"^\[" if edit == "dup_header" else r"^[A-Za-z0-9_\"-]+ = "
    found = [i for i, line in enumerate(lines) if re.match(pattern, line)]
    if not found:
        return text
    i = rng.choice(found)
    lines.insert(i + 1 + (0 if edit == "dup_line" else rng.randrange(3)), lines[i])
    return "\n".join(lines)
