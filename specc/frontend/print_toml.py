"""Print a spec tree as canonical TOML text (`specc fmt`, `specc convert`).

The layout is the one the reference specs use: top-level values first
(`format`, `extends`, `name`, `description`, then the rest), then one
``[section]`` per table in the order `params`, `init`, blocks, `model`, then
the rest; each node of a ``nodes`` table on one line as an inline table with
`op`/`block` and `in` first; a blank line before each header.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

from specc.frontend import spelling
from specc.frontend.comments import Line
from specc.frontend.print_dsl import top_order
from specc.raw import Path

Spelling = Callable[[Path, Any], "str | None"]


def toml_lines(data: dict[str, Any], spelling_of: Spelling) -> list[Line]:
    """The lines of `data` as TOML; `spelling_of(path, value)` may keep a number as it was written."""
    printer = _Printer(spelling_of)
    values, tables = top_order(data)
    for key in values:
        printer.pair(key, data[key], (key,))
    for key in tables:
        printer.table((key,), data[key])
    return printer.lines


class _Printer:
    def __init__(self, spelling_of: Spelling):
        self.spelling_of = spelling_of
        self.lines: list[Line] = []

    def pair(self, key: str, value: Any, path: Path) -> None:
        self.lines.append(Line(f"{_key(key)} = {self.value(value, path)}", path))

    def table(self, path: Path, table: dict[str, Any]) -> None:
        plain = [k for k, v in table.items() if not _is_section(path + (k,), v)]
        subs = [k for k in table if k not in plain]
        first = _SUB_ORDER.get(path[:1] + ("*",) * (len(path) - 1), ())
        subs = [k for k in first if k in subs] + [k for k in subs if k not in first]
        if plain or not subs:  # a table holding only tables needs no header of its own
            header = ".".join(_key(str(p)) for p in path)
            self.lines.append(Line(f"[{header}]", path, blank=True))
            for key in plain:
                self.pair(key, table[key], path + (key,))
        for key in subs:
            self.table(path + (key,), table[key])

    def value(self, value: Any, path: Path) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return self.spelling_of(path, value) or spelling.number_text(value)
        if isinstance(value, str):
            return spelling.quote(value)
        if isinstance(value, list):
            return "[" + ", ".join(self.value(v, path + (i,)) for i, v in enumerate(value)) + "]"
        if isinstance(value, dict):
            keys = _node_order(value) if len(path) >= 2 and path[-2] == "nodes" else list(value)
            inner = ", ".join(f"{_key(k)} = {self.value(value[k], path + (k,))}" for k in keys)
            return "{ " + inner + " }" if inner else "{}"
        if isinstance(value, (datetime.date, datetime.time)):
            return value.isoformat()
        raise TypeError(f"cannot write {type(value).__name__} as TOML")  # pragma: no cover - parsers give none


# Sub-tables in the reference specs' order: a model's inputs, outputs, nodes; a block's params before its nodes.
_SUB_ORDER: dict[Path, tuple[str, ...]] = {
    ("model",): ("inputs", "outputs", "nodes"),
    ("blocks", "*"): ("params", "nodes"),
}


def _is_section(path: Path, value: Any) -> bool:
    """Tables print as sections, except a node of a `nodes` table: a node naming its op or block is
    one inline table on one line; one that only changes a few keys of an inherited node is a section."""
    if not isinstance(value, dict):
        return False
    return not (len(path) >= 2 and path[-2] == "nodes" and ("op" in value or "block" in value))


def _node_order(node: dict[str, Any]) -> list[str]:
    head = [k for k in ("op", "block", "in") if k in node]
    return head + [k for k in node if k not in head]


def _key(key: str) -> str:
    return key if spelling.TOML_BARE_KEY.match(key) else spelling.quote(key)
