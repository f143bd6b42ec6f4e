"""DSL parse tree → the spec tree and its spans (what the TOML front end would give).

The walk is bottom-up and iterative (`Tree.iter_subtrees`), so a deeply nested
or very long input cannot exhaust Python's stack. Each rule's handler returns a
`Val` (a value, its span, and the spans of everything inside it, relative to
it) or an `Entry` (a key path and a `Val`); tables merge their entries the way
TOML's dotted keys and headers do, and a key given twice is a diagnostic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Union, cast

from lark import Token, Tree

from specc.diagnostics import Collector, Span
from specc.frontend import spelling
from specc.raw import MAX_DEPTH, Path

MAX_EXPRESSION = 1000  # characters of one bare expression; the evaluator takes 500
_NO_LITERAL = object()


@dataclass
class Val:
    value: Any
    span: Span
    # Spans of everything inside `value`, by path relative to it: (key span, value span).
    inner: dict[Path, tuple[Span | None, Span | None]] = field(default_factory=dict)
    ends: list[tuple[Path, int, int]] = field(default_factory=list)  # closing braces, for comments


@dataclass
class Entry:
    parts: list[tuple[str, Span]]  # the key path as written, each part with its span
    val: Val
    implied: int = 0  # leading parts the statement implies (`nodes` for a node) rather than writes


@dataclass
class Ex:
    """A bare expression on its way up: canonical text (None once too long) and precedence."""

    text: str | None
    level: int
    literal: Any = _NO_LITERAL
    signed: bool = False  # a literal that already has its minus sign


Result = Union[Val, Entry, Ex, list, tuple]


class Builder:
    def __init__(self, file: str, diags: Collector):
        self.file, self.diags = file, diags

    # -- driving ---------------------------------------------------------------------
    def run(self, tree: Tree) -> Val:
        results: dict[int, Any] = {}
        for sub in tree.iter_subtrees():  # children before parents
            args = [results.pop(id(c)) if isinstance(c, Tree) else c for c in sub.children]
            handler: Callable[..., Any] = getattr(self, "_" + str(sub.data).replace("expr__", "x_"))
            results[id(sub)] = handler(sub, args)
        return results[id(tree)]

    # -- spans -----------------------------------------------------------------------
    def span(self, item: Tree | Token) -> Span:
        if isinstance(item, Token):
            line, col, end_line, end_col = item.line, item.column, item.end_line, item.end_column
        else:
            meta = item.meta
            line, col, end_line, end_col = meta.line, meta.column, meta.end_line, meta.end_column
        line, col = line or 1, col or 1
        return Span(self.file, line, col, end_col if end_line == line and end_col else col + 1)

    def keyword_span(self, tree: Tree, word: str) -> Span:
        meta = tree.meta
        return Span(self.file, meta.line, meta.column, meta.column + len(word))

    def between(self, first: Span, last: Span) -> Span:
        return Span(self.file, first.line, first.col, last.end_col if last.line == first.line else first.col + 1)

    # -- documents and tables ----------------------------------------------------------
    def _start(self, tree: Tree, entries: list[Entry]) -> Val:
        return self.table(entries, Span(self.file, 1, 1, 1))

    def _table(self, tree: Tree, entries: list[Entry]) -> Val:
        val = self.table(entries, self.span(tree))
        val.ends.append(((), tree.meta.end_line, tree.meta.end_column - 1))
        return val

    def _assign(self, tree: Tree, args: list) -> Entry:
        return Entry(args[0], args[1])

    _section = _assign

    def _key(self, tree: Tree, tokens: list[Token]) -> list[tuple[str, Span]]:
        parts = [(self.key_text(t), self.span(t)) for t in tokens]
        if len(parts) > MAX_DEPTH:
            self.diags.error("E001", f"a key path may have at most {MAX_DEPTH} parts", parts[MAX_DEPTH][1])
            parts = parts[:MAX_DEPTH]
        return parts

    def _name(self, tree: Tree, tokens: list[Token]) -> tuple[str, Span]:
        return self.key_text(tokens[0]), self.span(tokens[0])

    def key_text(self, token: Token) -> str:
        return self.string(token) if token.type == "STRING" else str(token)

    def table(self, entries: list[Entry], span: Span) -> Val:
        """A table from its entries: dotted keys make sub-tables, tables merge, a leaf given twice is an error."""
        out = Val({}, span)
        for entry in entries:
            node, path = out.value, cast(Path, ())
            for i, (name, key_span) in enumerate(entry.parts[:-1]):
                path += (name,)
                if name not in node:
                    node[name] = {}
                    # An implied table has no key of its own in the text (comments pin to real keys).
                    out.inner[path] = (None, None) if i < entry.implied else (key_span, key_span)
                elif not isinstance(node[name], dict):
                    self.twice(path, key_span, out)
                    break
                node = node[name]
            else:
                name, key_span = entry.parts[-1]
                self.place(node, path + (name,), key_span, entry.val, out)
        return out

    def place(self, node: dict, path: Path, key_span: Span, val: Val, out: Val) -> None:
        """Put `val` at `path` (whose parent table is `node`) inside `out`, merging tables."""
        name = path[-1]
        if name not in node:
            node[name] = val.value
            out.inner[path] = (key_span, val.span)
            out.inner.update({path + rel: spans for rel, spans in val.inner.items()})
            out.ends.extend((path + rel, line, col) for rel, line, col in val.ends)
        elif isinstance(node[name], dict) and isinstance(val.value, dict):
            out.ends.extend((path + rel, line, col) for rel, line, col in val.ends)
            for key, value in val.value.items():
                inner = {rel[1:]: spans for rel, spans in val.inner.items() if rel[:1] == (key,) and len(rel) > 1}
                key_at, value_at = val.inner.get((key,), (None, None))
                sub = Val(value, value_at or val.span, inner)
                self.place(node[name], path + (key,), key_at or key_span, sub, out)
        else:
            self.twice(path, key_span, out)

    def twice(self, path: Path, key_span: Span, out: Val) -> None:
        first = out.inner.get(path, (None, None))[0]
        where = f" at line {first.line}" if first is not None and first.line > 0 else ""
        self.diags.error("E006", f"'{dotted(path)}' is already defined{where}", key_span,
                         "each key may be given once; tables with the same name are merged")

    # -- values ------------------------------------------------------------------------
    def _expr_value(self, tree: Tree, args: list[Ex]) -> Val:
        ex = args[0]
        if ex.literal is not _NO_LITERAL:
            return Val(ex.literal, self.span(tree))
        if ex.text is None:
            self.diags.error("E020", f"expression is longer than {MAX_EXPRESSION} characters", self.span(tree))
            return Val("", self.span(tree))
        return Val(ex.text, self.span(tree))

    def _string(self, tree: Tree, tokens: list[Token]) -> Val:
        return Val(self.string(tokens[0]), self.span(tree))

    def string(self, token: Token) -> str:
        try:
            return spelling.unquote(str(token))
        except spelling.EscapeError as err:
            col = (token.column or 1) + err.offset
            self.diags.error("E001", err.message, Span(self.file, token.line or 1, col, col + err.width),
                             "escapes are \\\" \\\\ \\n \\t \\r \\b \\f \\uXXXX \\UXXXXXXXX")
            return ""

    def _dotted(self, tree: Tree, tokens: list[Token]) -> Val:
        return Val(".".join(tokens), self.span(tree))

    def _tensor_type(self, tree: Tree, tokens: list[Token]) -> Val:
        optional = tokens[-1].type == "OPTIONAL"
        dims = tokens[1:-1] if optional else tokens[1:]
        return Val(f"{tokens[0]}[{', '.join(dims)}]{'?' if optional else ''}", self.span(tree))

    def _array(self, tree: Tree, items: list[Val]) -> Val:
        return self.array(items, self.span(tree))

    def array(self, items: list[Val], span: Span) -> Val:
        out = Val([v.value for v in items], span)
        for i, v in enumerate(items):
            out.inner[(i,)] = (None, v.span)
            out.inner.update({(i,) + rel: spans for rel, spans in v.inner.items()})
            out.ends.extend(((i,) + rel, line, col) for rel, line, col in v.ends)
        return out

    def _paren(self, tree: Tree, args: list[Val]) -> Val:
        return args[0]

    # -- graphs ------------------------------------------------------------------------
    def _block(self, tree: Tree, args: list) -> Entry:
        keyword, name_token, body = args[0], args[1], args[-1]
        entries: list[Entry] = []
        rest = args[2:-1]
        if rest and isinstance(rest[0], tuple) and rest[0][0] == "signature":
            entries.append(Entry([("inputs", rest[0][1].span)], rest[0][1]))
            rest = rest[1:]
        if rest:  # ARROW value
            entries.append(Entry([("output", self.span(rest[0]))], rest[1]))
        entries += body[0]
        val = self.table(entries, self.span(tree))
        val.ends.append(((), *body[1]))
        parts = [("blocks", self.span(keyword)), (self.key_text(name_token), self.span(name_token))]
        return Entry(parts, val, implied=1)

    def _signature(self, tree: Tree, items: list[Val]) -> tuple[str, Val]:
        return "signature", self.array(items, self.span(tree))

    def _block_body(self, tree: Tree, entries: list[Entry]) -> tuple[list[Entry], tuple[int, int]]:
        return entries, (tree.meta.end_line, tree.meta.end_column - 1)

    _model_body = _block_body

    def _model(self, tree: Tree, args: list) -> Entry:
        keyword, body = args
        val = self.table(body[0], self.span(tree))
        val.ends.append(((), *body[1]))
        return Entry([("model", self.span(keyword))], val)

    def _input(self, tree: Tree, args: list) -> Entry:
        return Entry([("inputs", self.span(args[0]))] + args[1], args[2], implied=1)

    def _output(self, tree: Tree, args: list) -> Entry:
        return Entry([("outputs", self.span(args[0]))] + args[1], args[2], implied=1)

    def _node(self, tree: Tree, args: list) -> Entry:
        parts, val = args
        return Entry([("nodes", parts[0][1])] + parts, val, implied=1)

    def _positional(self, tree: Tree, args: list[Val]) -> tuple[str, Val]:
        return "positional", args[0]

    def _named_input(self, tree: Tree, args: list) -> tuple[str, Entry]:
        return "named", Entry([args[0]], args[1])

    def _param(self, tree: Tree, args: list) -> tuple[str, Entry]:
        return "param", Entry([args[0]], args[1])

    def _repeat(self, tree: Tree, args: list) -> tuple[str, Entry]:
        return "clause", Entry([("repeat", self.span(args[0]))], args[1])

    def _with(self, tree: Tree, args: list) -> tuple[str, Entry]:
        return "clause", Entry([("with", self.span(args[0]))], args[1])

    def _override(self, tree: Tree, args: list) -> tuple[str, Val]:
        keyword, layers, table = args
        span = self.span(keyword)
        val = Val({"layers": layers.value, "with": table.value}, self.span(tree))
        val.inner[("layers",)] = (span, layers.span)
        val.inner[("with",)] = (table.span, table.span)
        val.inner.update({("with",) + rel: spans for rel, spans in table.inner.items()})
        val.ends.extend((("with",) + rel, line, col) for rel, line, col in table.ends)
        return "override", val

    def _call(self, tree: Tree, args: list) -> Val:
        kind = "block" if isinstance(args[0], Token) and args[0].type == "BLOCK" else "op"
        callee = args[1] if kind == "block" else args[0]
        entries = [Entry([(kind, self.span(callee))], Val(str(callee), self.span(callee)))]
        parts = args[2:] if kind == "block" else args[1:]
        inputs = [p for p in parts if p[0] in ("positional", "named")]
        params = [p[1] for p in parts if p[0] in ("param", "clause")]
        overrides = [p[1] for p in parts if p[0] == "override"]
        self.check_order(parts, str(callee))
        if inputs:
            entries.append(self.inputs(inputs))
        entries += params
        if overrides:
            key_span = overrides[0].inner[("layers",)][0] or overrides[0].span
            entries.append(Entry([("overrides", key_span)], self.array(overrides, overrides[0].span)))
        return self.table(entries, self.span(tree))

    def check_order(self, parts: list[tuple[str, Any]], callee: str) -> None:
        seen_param, kinds = False, set[str]()
        for kind, item in parts:
            span = item.span if isinstance(item, Val) else item.parts[0][1]
            if kind in ("positional", "named"):
                if seen_param:
                    self.diags.error("E007", f"an input of '{callee}' comes after its parameters", span,
                                     "write the inputs first: name(x, y, key=value)")
                elif kinds and kind not in kinds:
                    self.diags.error("E007", f"'{callee}' takes its inputs either by position or by name, not both", span)
                kinds.add(kind)
            elif kind == "param":
                seen_param = True

    def inputs(self, inputs: list[tuple[str, Any]]) -> Entry:
        first = inputs[0][1].span if inputs[0][0] == "positional" else inputs[0][1].parts[0][1]
        last = inputs[-1][1].span if inputs[-1][0] == "positional" else inputs[-1][1].val.span
        span = self.between(first, last)
        if inputs[0][0] == "named":
            val = self.table([item for kind, item in inputs if kind == "named"], span)
        elif len(inputs) == 1:
            val = inputs[0][1]
        else:
            val = self.array([item for kind, item in inputs if kind == "positional"], span)
        return Entry([("in", span)], val)

    # -- expressions (rules imported from specc/expr.lark) ----------------------------------
    def _x_int(self, tree: Tree, tokens: list[Token]) -> Ex:
        text = str(tokens[0])
        try:
            value: Any = int(text.replace("_", ""))
        except ValueError:  # longer than Python converts (4300 digits)
            self.diags.error("E001", "integer literal is too long", self.span(tokens[0]))
            value = 0
        return Ex(text, spelling.ATOM, value)

    def _x_float(self, tree: Tree, tokens: list[Token]) -> Ex:
        return Ex(str(tokens[0]), spelling.ATOM, float(str(tokens[0]).replace("_", "")))

    def _x_true(self, tree: Tree, args: list) -> Ex:
        return Ex("true", spelling.ATOM, True)

    def _x_false(self, tree: Tree, args: list) -> Ex:
        return Ex("false", spelling.ATOM, False)

    def _x_name(self, tree: Tree, tokens: list[Token]) -> Ex:
        text = str(tokens[0])
        return Ex(text, spelling.ATOM, math.inf if text == "inf" else math.nan if text == "nan" else _NO_LITERAL)

    def _x_call(self, tree: Tree, args: list) -> Ex:
        texts = [a.text for a in args[1:]]
        if any(t is None for t in texts):
            return Ex(None, spelling.ATOM)
        return self.limit(Ex(f"{args[0]}({', '.join(texts)})", spelling.ATOM))  # type: ignore[arg-type]

    def _x_neg(self, tree: Tree, args: list[Ex]) -> Ex:
        (operand,) = args
        if operand.text is None:
            return operand
        text, level = spelling.negate((operand.text, operand.level))
        literal = operand.literal
        if isinstance(literal, (int, float)) and not isinstance(literal, bool) and not operand.signed:
            return Ex(text, level, -literal, signed=True)
        return self.limit(Ex(text, level))

    def binary(self, op: str, args: list[Ex]) -> Ex:
        left, right = args
        if left.text is None or right.text is None:
            return Ex(None, spelling.ATOM)
        text, level = spelling.binary(op, (left.text, left.level), (right.text, right.level))
        return self.limit(Ex(text, level))

    def limit(self, ex: Ex) -> Ex:
        return Ex(None, ex.level) if ex.text is not None and len(ex.text) > MAX_EXPRESSION else ex

    def _x_add(self, tree: Tree, args: list[Ex]) -> Ex:
        return self.binary("add", args)

    def _x_sub(self, tree: Tree, args: list[Ex]) -> Ex:
        return self.binary("sub", args)

    def _x_mul(self, tree: Tree, args: list[Ex]) -> Ex:
        return self.binary("mul", args)

    def _x_div(self, tree: Tree, args: list[Ex]) -> Ex:
        return self.binary("div", args)

    def _x_floordiv(self, tree: Tree, args: list[Ex]) -> Ex:
        return self.binary("floordiv", args)

    def _x_mod(self, tree: Tree, args: list[Ex]) -> Ex:
        return self.binary("mod", args)

    def _x_pow(self, tree: Tree, args: list[Ex]) -> Ex:
        return self.binary("pow", args)


def dotted(path: Path) -> str:
    """A key path as a person writes it: `params.d_model`, `nodes."my node".in.0`."""
    return ".".join(str(p) if isinstance(p, int) or spelling.DSL_NAME.match(p) else spelling.quote(p) for p in path)
