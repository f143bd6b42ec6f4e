"""Print a spec tree as canonical DSL text (`specc fmt`, `specc convert`).

Canonical means: top-level keys in a fixed order (`format`, `extends`, `name`,
`description`, other values; then `params`, `init`, blocks, `model`, other
sections), source order within a table, one statement per line, nodes as op
calls or block instances, calls wrapped at `WIDTH` columns, strings bare
wherever the DSL reads them back as the same string. Anything the sugar
cannot say exactly (an odd node, an empty table) is printed in the generic
``key = value`` / ``key { ... }`` form, so every tree survives the round trip.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

from specc.diagnostics import Diagnostic, Span, SpecError
from specc.frontend import spelling
from specc.frontend.comments import Line
from specc.frontend.dsl import reads_as
from specc.raw import Path

WIDTH = 100
INDENT = "  "
FIRST = ("format", "extends", "name", "description")
SECTIONS = ("params", "init", "blocks", "model")
# Words that would be read as keywords where a key starts a statement.
_KEYWORDS = {"top": {"block", "model"}, "model": {"input", "output"}, "arg": {"true", "false"}, "": set()}

Spelling = Callable[[Path, Any], "str | None"]


def dsl_lines(data: dict[str, Any], spelling_of: Spelling, file: str = "<spec>") -> list[Line]:
    """The lines of `data` as DSL; `spelling_of(path, value)` may keep a number as it was written."""
    return _Printer(spelling_of, file).document(data)


def top_order(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Top-level keys: (plain values in canonical order, tables in canonical order)."""
    values = [k for k in FIRST if k in data and not isinstance(data[k], dict)]
    values += [k for k in data if k not in values and not isinstance(data[k], dict)]
    tables = [k for k in SECTIONS if isinstance(data.get(k), dict)]
    tables += [k for k in data if k not in tables and isinstance(data[k], dict)]
    return values, tables


class _Printer:
    def __init__(self, spelling_of: Spelling, file: str):
        self.spelling_of, self.file = spelling_of, file
        self.lines: list[Line] = []

    def emit(self, depth: int, text: str, path: Path | None = None, end: Path | None = None, blank: bool = False) -> None:
        self.lines.append(Line(INDENT * depth + text, path, end, blank))

    # -- document ---------------------------------------------------------------------------
    def document(self, data: dict[str, Any]) -> list[Line]:
        values, tables = top_order(data)
        for key in values:
            self.emit(0, f"{self.key(key, 'top')} = {self.value(data[key], (key,))}", (key,))
        for key in tables:
            table = data[key]
            if key == "blocks" and table:
                for name, block in table.items():
                    self.block(name, block)
            elif key == "model" and _model_fits(table):
                self.model(table)
            else:
                self.flat_sections((key,), table)
        return self.lines

    def flat_sections(self, path: Path, table: dict[str, Any]) -> None:
        """Top-level tables of tables print as dotted sections: `objective.causal_lm {}`."""
        if table and all(isinstance(v, dict) for v in table.values()):
            for key, sub in table.items():
                self.flat_sections(path + (key,), sub)
        else:
            self.section(0, self.key_path(path, "top"), path, table, blank=True)

    def section(self, depth: int, header: str, path: Path, table: dict[str, Any], blank: bool = False) -> None:
        if not table:
            self.emit(depth, f"{header} {{}}", path, blank=blank)
            return
        self.emit(depth, f"{header} {{", path, blank=blank)
        for key, value in table.items():
            self.entry(depth + 1, key, value, path + (key,))
        self.emit(depth, "}", end=path)

    def entry(self, depth: int, key: str, value: Any, path: Path) -> None:
        if isinstance(value, dict):
            self.section(depth, self.key(key, ""), path, value)
        else:
            self.emit(depth, f"{self.key(key, '')} = {self.value(value, path)}", path)

    # -- blocks and the model ------------------------------------------------------------------
    def block(self, name: str, block: Any) -> None:
        path = ("blocks", name)
        if not _block_fits(block):
            if isinstance(block, dict):
                self.section(0, self.key_path(path, "top"), path, block, blank=True)
            else:
                self.emit(0, f"{self.key_path(path, 'top')} = {self.value(block, path)}", path, blank=True)
            return
        header = f"block {self.key(name, '')}"
        if "inputs" in block:
            header += "(" + ", ".join(self.value(v, path + ("inputs", i)) for i, v in enumerate(block["inputs"])) + ")"
        if "output" in block:
            header += f" -> {self.value(block['output'], path + ('output',))}"
        tables = [k for k in block if k not in ("inputs", "output")]
        if not tables:
            self.emit(0, header + " {}", path, blank=True)
            return
        self.emit(0, header + " {", path, blank=True)
        order = [k for k in ("params",) if k in tables] + [k for k in tables if k not in ("params", "nodes")]
        for key in order:
            self.section(1, self.key(key, ""), path + (key,), block[key])
        if "nodes" in block:
            self.nodes(block["nodes"], path + ("nodes",), "", blank=bool(order))
        self.emit(0, "}", end=path)

    def model(self, model: dict[str, Any]) -> None:
        path = ("model",)
        if not model:
            self.emit(0, "model {}", path, blank=True)
            return
        self.emit(0, "model {", path, blank=True)
        blank = False
        inputs = model.get("inputs")
        if inputs:
            for name, value in inputs.items():
                where = path + ("inputs", name)
                self.emit(1, f"input {self.key(name, '')}: {self.value(value, where)}", where)
            blank = True
        if model.get("nodes"):
            self.nodes(model["nodes"], path + ("nodes",), "model", blank)
            blank = True
        outputs = model.get("outputs")
        if outputs:
            for i, (name, value) in enumerate(outputs.items()):
                where = path + ("outputs", name)
                self.emit(1, f"output {self.key(name, '')} = {self.value(value, where)}", where, blank=blank and i == 0)
            blank = True
        for key, value in model.items():
            if not (key in ("inputs", "nodes", "outputs") and value):
                self.section(1, self.key(key, "model"), path + (key,), value, blank=blank)
                blank = False
        self.emit(0, "}", end=path)

    def nodes(self, nodes: dict[str, Any], path: Path, context: str, blank: bool) -> None:
        if not nodes:
            self.section(1, "nodes", path, nodes, blank=blank)
            return
        for i, (name, node) in enumerate(nodes.items()):
            self.node(name, node, path + (name,), context, blank and i == 0)

    def node(self, name: str, node: Any, path: Path, context: str, blank: bool) -> None:
        head = f"{INDENT}{self.key(name, context)} = "
        if isinstance(node, dict) and _call_fits(node):
            self.call(head, node, path, blank)
            return
        if isinstance(node, str):
            text = spelling.quote(node)
        elif isinstance(node, (dict, list)):
            text = self.value(node, path)
        else:
            text = f"({self.value(node, path)})"
        self.lines.append(Line(head + text, path, blank=blank))

    def call(self, head: str, node: dict[str, Any], path: Path, blank: bool) -> None:
        kind = "op" if "op" in node else "block"
        callee = node[kind] if kind == "op" else f"block {node['block']}"
        args: list[str] = []
        sources = node.get("in", None)
        if "in" in node:
            args += self.inputs(sources, path + ("in",))
        clauses = []
        rest = [k for k in node if k not in (kind, "in")]
        if kind == "block":
            if "repeat" in node:
                clauses.append(f" repeat {self.value(node['repeat'], path + ('repeat',))}")
                rest.remove("repeat")
            if isinstance(node.get("with"), dict):
                clauses.append(f" with {self.value(node['with'], path + ('with',))}")
                rest.remove("with")
            if _overrides_fit(node.get("overrides")):
                for i, o in enumerate(node["overrides"]):
                    where = path + ("overrides", i)
                    clauses.append(f" override {self.value(o['layers'], where + ('layers',))} "
                                   f"{self.value(o['with'], where + ('with',))}")
                rest.remove("overrides")
        if isinstance(sources, dict) and not sources:
            rest.insert(0, "in")
        args += [f"{self.key(k, 'arg')}={self.value(node[k], path + (k,))}" for k in rest]
        self.wrap(head + callee + "(", args, ")" + "".join(clauses), path, blank)

    def inputs(self, sources: Any, path: Path) -> list[str]:
        if isinstance(sources, dict):
            return [f"{self.key(k, 'arg')}: {self.value(v, path + (k,))}" for k, v in sources.items()] if sources else []
        if isinstance(sources, list) and len(sources) >= 2:
            return [self.value(v, path + (i,)) for i, v in enumerate(sources)]
        return [self.value(sources, path)]

    def wrap(self, opening: str, args: list[str], closing: str, path: Path, blank: bool) -> None:
        """`opening` + args + `closing` on one line, or filled up to `WIDTH` with args aligned after '('."""
        one = opening + ", ".join(args) + closing
        if len(one) <= WIDTH or len(args) < 2:
            self.lines.append(Line(one, path, blank=blank))
            return
        pad = " " * len(opening) if len(opening) <= WIDTH // 2 else INDENT * 3
        rows, row = [], opening
        for i, arg in enumerate(args):
            piece = arg + ("," if i < len(args) - 1 else closing)
            fresh = row in (opening, pad)
            if not fresh and len(row) + 1 + len(piece) > WIDTH:
                rows.append(row)
                row = pad
                fresh = True
            row += piece if fresh else " " + piece
        rows.append(row)
        self.lines.append(Line(rows[0], path, blank=blank))
        self.lines += [Line(r) for r in rows[1:]]

    # -- keys and values --------------------------------------------------------------------
    def key(self, key: str, context: str) -> str:
        bare = spelling.DSL_NAME.match(key) and key not in _KEYWORDS[context]
        return key if bare else spelling.quote(key)

    def key_path(self, path: Path, context: str) -> str:
        return ".".join(self.key(str(p), context if i == 0 else "") for i, p in enumerate(path))

    def value(self, value: Any, path: Path) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return self.spelling_of(path, value) or spelling.number_text(value)
        if isinstance(value, str):
            return value if value and reads_as(value, value) else spelling.quote(value)
        if isinstance(value, list):
            return "[" + ", ".join(self.value(v, path + (i,)) for i, v in enumerate(value)) + "]"
        if isinstance(value, dict):
            if not value:
                return "{}"
            return "{" + ", ".join(f"{self.key(k, '')} = {self.value(v, path + (k,))}" for k, v in value.items()) + "}"
        kind = "date or time" if isinstance(value, (datetime.date, datetime.time)) else type(value).__name__
        raise SpecError([Diagnostic("E008", f"the DSL has no {kind} values ('{'.'.join(map(str, path))}')",
                                    Span(self.file), "write it as a string")])


def _block_fits(block: Any) -> bool:
    return isinstance(block, dict) and isinstance(block.get("inputs", []), list) and all(
        isinstance(v, dict) for k, v in block.items() if k not in ("inputs", "output"))


def _model_fits(model: Any) -> bool:
    return isinstance(model, dict) and all(isinstance(v, dict) for v in model.values())


def _call_fits(node: dict[str, Any]) -> bool:
    kinds = [k for k in ("op", "block") if k in node]
    if len(kinds) != 1 or not isinstance(node[kinds[0]], str) or not spelling.DSL_NAME.match(node[kinds[0]]):
        return False
    return not (kinds[0] == "op" and node["op"] == "block")


def _overrides_fit(overrides: Any) -> bool:
    return isinstance(overrides, list) and bool(overrides) and all(
        isinstance(o, dict) and set(o) == {"layers", "with"} and isinstance(o["with"], dict) for o in overrides)
