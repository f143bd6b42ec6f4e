"""DSL front end: `.spec` text → `RawSpec` with spans (the tree the TOML form gives).

The grammar is `dsl.lark` (LALR, so parsing is linear in the input). A
post-lexer drops new lines inside ( ) and [ ] so calls and arrays may wrap,
and refuses nesting deeper than `MAX_BRACKETS`. Syntax errors become friendly
diagnostics (`dsl_errors`); the tree becomes data and spans (`dsl_build`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lark.exceptions import UnexpectedInput

from specc.diagnostics import Collector, Diagnostic, Span, SpecError
from specc.frontend.dsl_build import MAX_EXPRESSION, Builder
from specc.frontend.dsl_errors import nesting_diagnostic, syntax_diagnostic
from specc.frontend.dsl_grammar import ControlInComment, TooDeep, TooMany, grammar
from specc.frontend.limits import check_length, too_many_tokens
from specc.raw import MAX_DEPTH, RawSpec, SpanTable, depth

@dataclass
class DslDocument:
    """A parsed `.spec` file, plus where its tables close (so `fmt` can keep comments inside them)."""

    raw: RawSpec
    ends: list[tuple[tuple, int, int]]  # (table path, line, column of its closing brace)


def parse_dsl(text: str, file: str) -> RawSpec:
    """Parse DSL `text` (read from `file`) into a `RawSpec`; every mistake is a diagnostic."""
    return parse_dsl_document(text, file).raw


def parse_dsl_document(text: str, file: str) -> DslDocument:
    check_length(text, file)
    try:
        tree = grammar().parse(text, start="start")
    except UnexpectedInput as err:
        raise SpecError([syntax_diagnostic(err, text, file)]) from None
    except TooMany as err:
        raise too_many_tokens(file, err.token.line or 1, err.token.column or 1) from None
    except ControlInComment as err:
        raise SpecError([Diagnostic("E001", f"control character U+{ord(err.token.value):04X} in a comment",
                                    Span(file, err.token.line or 1, err.token.column or 1),
                                    "TOML refuses it too; remove it")]) from None
    except TooDeep as err:
        raise SpecError([nesting_diagnostic(err.token, file)]) from None
    diags = Collector()
    val = Builder(file, diags).run(tree)
    diags.raise_if_any()
    if depth(val.value) > MAX_DEPTH:
        raise SpecError([Diagnostic("E001", f"spec nests deeper than {MAX_DEPTH} levels", Span(file, 1, 1))])
    spans = SpanTable()
    for path, (key_span, value_span) in val.inner.items():
        if key_span is not None:
            spans.keys[path] = key_span
        if value_span is not None:
            spans.values[path] = value_span
    return DslDocument(RawSpec(val.value, spans, file, {file: text}), val.ends)


_UNREADABLE = object()


@lru_cache(maxsize=65536)
def _read_value(text: str) -> Any:
    if len(text) > MAX_EXPRESSION:  # never bare in the DSL (E020), and parsing it could take seconds
        return _UNREADABLE
    try:
        tree = grammar().parse(text, start="value")
    except (UnexpectedInput, TooDeep):
        return _UNREADABLE
    diags = Collector()
    value = Builder("<value>", diags).run(tree).value
    return _UNREADABLE if diags.items else value


def reads_as(text: str, value: str) -> bool:
    """Whether `text`, written bare in a DSL value position, means exactly the string `value`."""
    got = _read_value(text)
    return isinstance(got, str) and got == value


def reads_number(text: str) -> Any:
    """The value DSL `text` denotes (None if it is not a value); used to keep a number's spelling."""
    got = _read_value(text)
    return None if got is _UNREADABLE else got
