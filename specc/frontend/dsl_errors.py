"""Friendly DSL syntax errors: lark's `UnexpectedInput` → one `Diagnostic`.

lark reports the token it could not take and the terminals it would have
taken. That is turned into a sentence a person can act on: what was expected,
after what (``expected ')' after the arguments of block 'decoder_layer'``),
found where. The innermost open bracket, found by re-lexing up to the error,
names the construct being written; the parser's exact accepted set (not the
merged LALR lookahead) decides the wording. When the offending token sits on a
later line than the last good one, the caret goes right after the last good
token: that is where the missing piece belongs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from lark import Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from specc.diagnostics import Diagnostic, Span
from specc.frontend.dsl_grammar import MAX_BRACKETS, TooDeep, grammar

_CLOSER = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}
_OPERATORS = {"PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/", "__ANON_0": "//", "PERCENT": "%", "__ANON_1": "**"}
_CLAUSES = {"repeat", "with", "override"}
_VALUE_STARTS = {"NAME", "STRING", "INT", "FLOAT", "LSQB", "LBRACE", "LPAR", "MINUS", "PLUS", "TRUE", "FALSE"}
_NAMES = {
    "NAME": "a name", "STRING": "a string", "INT": "a number", "FLOAT": "a number", "_NL": "a new line",
    "COMMA": "','", "EQUAL": "'='", "COLON": "':'", "DOT": "'.'", "ARROW": "'->'", "OPTIONAL": "'?'",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'",
    "BLOCK": "'block'", "MODEL": "'model'", "INPUT": "'input'", "OUTPUT": "'output'", "REPEAT": "'repeat'",
    "WITH": "'with'", "OVERRIDE": "'override'", "TRUE": "true", "FALSE": "false", "$END": "the end of the file",
}


@dataclass
class _Open:
    """An open bracket at the error, and what it belongs to."""

    kind: str  # LPAR, LSQB, LBRACE
    label: str  # "the arguments of 'add'", "the model body", ...
    line: int


def syntax_diagnostic(err: UnexpectedInput, text: str, file: str) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(err, text, file)
    if isinstance(err, UnexpectedToken):
        return _unexpected_token(err, text, file)
    return Diagnostic("E001", "syntax error", Span(file, getattr(err, "line", 1) or 1, getattr(err, "column", 1) or 1))


def nesting_diagnostic(token: Token, file: str) -> Diagnostic:
    return Diagnostic("E001", f"brackets nest deeper than {MAX_BRACKETS} levels",
                      Span(file, token.line or 1, token.column or 1, (token.column or 1) + 1))


def _bad_character(err: UnexpectedCharacters, text: str, file: str) -> Diagnostic:
    pos = err.pos_in_stream or 0
    ch = text[pos] if 0 <= pos < len(text) else ""
    span = Span(file, err.line, err.column, err.column + 1)
    if ch == '"':
        return Diagnostic("E001", "unterminated string", span,
                          "a string ends on the line it starts; write \\n for a line break")
    if ch == "'":
        return Diagnostic("E001", "unexpected character \"'\"", span, "strings use double quotes")
    shown = f"'{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}" if ch else "end of input"
    return Diagnostic("E001", f"unexpected character {shown}", span)


def _unexpected_token(err: UnexpectedToken, text: str, file: str) -> Diagnostic:
    token = err.token
    # The exact set the parser accepts here (lark's `expected` is the merged LALR lookahead).
    parser = getattr(err, "interactive_parser", None)
    try:
        accepts = set(parser.accepts()) if parser is not None else set(err.expected)
    except LarkError:  # pragma: no cover - accepts() re-runs the parser; fall back to lark's lookahead
        accepts = set(err.expected)
    at_end = token.type == "$END"
    scan = _scan(text, len(text) if at_end else token.start_pos)
    prev = scan.recent[-1] if scan.recent else None
    found = _found(token)
    # A missing piece belongs right after the last good token when the next one is on a later line.
    after = prev is not None and (at_end or (token.line or 0) > (prev.end_line or 0))
    if after and prev is not None:
        span = _just_after(prev, file)
    elif at_end:
        span = _end_span(text, file)
    else:
        span = Span(file, token.line or 1, token.column or 1, token.end_column or (token.column or 1) + 1)
    if str(token) in _CLAUSES and prev is not None and scan.stack and scan.stack[-1].kind == "LPAR":
        after = True  # `layer(x repeat 2`: the ')' is missing before the clause
        span = _just_after(prev, file)
    message, hint = _message(token, prev, accepts, scan, found, after)
    return Diagnostic("E001", message, span, hint)


def _message(token: Token, prev: Token | None, accepts: set[str], scan: _Scan, found: str,
             after: bool) -> tuple[str, str | None]:
    stack = scan.stack
    top = stack[-1] if stack else None
    closer = _CLOSER[top.kind] if top else None
    value = str(token)
    if token.type in ("RPAR", "RSQB", "RBRACE") and closer != value:
        if top is None:
            return f"unmatched '{value}'", "nothing is open here; remove it"
        return f"expected '{closer}' to close {top.label} (opened at line {top.line}), found '{value}'", None
    if top is not None and _closing_terminal(top.kind) in accepts:
        if top.kind == "LBRACE":
            if after or token.type == "$END":
                return f"expected '}}' to close {top.label} (opened at line {top.line})", None
            if "_NL" in accepts:
                return f"expected a new line, ',' or '}}' after this entry, found {found}", \
                    "put each entry on its own line, or separate them with ','"
        elif after:
            return f"expected '{closer}' after {top.label}", None
        elif "COMMA" in accepts:
            return f"expected ',' or '{closer}' in {top.label}, found {found}", None
        else:
            return f"expected '{closer}' after {top.label}, found {found}", None
    if accepts <= {"LBRACE", "ARROW"} and scan.declaring and top is None:
        return f"expected '{{' to open the body of block '{scan.declaring}', found {found}", None
    if accepts == {"LBRACE"} and any(t.type == "OVERRIDE" for t in scan.recent):
        return f"expected a table after the layer range, found {found}", 'write e.g. override "6:12" {heads = 16}'
    special = _after_previous(prev, accepts, found)
    if special:
        return special
    if "_NL" in accepts and top is None and prev is not None:
        return f"expected a new line after this statement, found {found}", \
            "put each statement on its own line, or separate them with ','"
    return f"expected {_describe(accepts)}, found {found}", None


def _closing_terminal(kind: str) -> str:
    return {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}[kind]


def _after_previous(prev: Token | None, accepts: set[str], found: str) -> tuple[str, str | None] | None:
    """Messages keyed by the last good token: `=`, an operator, `block`, `input`, `with`, ..."""
    if prev is None:
        return None
    kind, text = prev.type, str(prev)
    if kind == "EQUAL" and "BLOCK" in accepts:
        return (f"expected a node after '=', found {found}",
                "a node is an op call like add(x, y), a block instance like block layer(x), or a table")
    if kind in ("EQUAL", "COLON") and accepts & _VALUE_STARTS:
        return f"expected a value after '{text}', found {found}", None
    if kind in _OPERATORS and accepts & _VALUE_STARTS:
        return f"expected a value after '{text}', found {found}", None
    if kind == "BLOCK":
        return f"expected a block name after 'block', found {found}", None
    if kind in ("INPUT", "OUTPUT"):
        hint = f"'{text}' declares a model {text}; a node named {text} needs quotes: \"{text}\" = ..."
        return f"expected a name after '{text}', found {found}", hint if found == "'='" else None
    if kind == "DOT":
        return f"expected a key after '.', found {found}", None
    if kind == "WITH":
        return f"expected a table after 'with', found {found}", "write e.g. with {heads = 16}"
    if kind == "OVERRIDE":
        return f"expected a layer range after 'override', found {found}", 'write e.g. override "6:12" {heads = 16}'
    if kind == "ARROW":
        return f"expected the block's output after '->', found {found}", None
    if kind == "REPEAT":
        return f"expected a count after 'repeat', found {found}", None
    if accepts == {"COLON"} or accepts == {"COLON", "DOT"}:
        return f"expected ':' and a type after input '{text}', found {found}", "write e.g. input tokens: int[batch, seq]"
    if accepts == {"LPAR"}:
        return f"expected '(' after '{text}', found {found}", f"a node calls an op: {text}(x, key=value)"
    if "EQUAL" in accepts and "LBRACE" in accepts and kind in ("NAME", "STRING"):
        return f"expected '=' or '{{' after '{text}', found {found}", None
    if accepts == {"EQUAL"} or accepts == {"EQUAL", "DOT"}:
        return f"expected '=' after '{text}', found {found}", None
    if "LBRACE" in accepts and "ARROW" in accepts:
        return f"expected '->' or '{{' after the block's inputs, found {found}", None
    if accepts == {"LBRACE"}:
        return f"expected '{{' after '{text}', found {found}", None
    return None


def _describe(accepts: Iterable[str]) -> str:
    names = set(accepts) - set(_OPERATORS)
    if not names:
        return "an operator"
    phrases = []
    if len(names & _VALUE_STARTS) >= 3:
        phrases.append("a value")
        names -= _VALUE_STARTS
    phrases += sorted({_NAMES.get(n, n) for n in names})
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _found(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "_NL":
        return "the end of the line"
    if token.type == "STRING":
        return "a string"
    text = str(token)
    return f"'{text if len(text) <= 24 else text[:21] + '...'}'"


def _just_after(token: Token, file: str) -> Span:
    col = token.end_column or 1
    return Span(file, token.end_line or 1, col, col + 1)


def _end_span(text: str, file: str) -> Span:
    line = text.count("\n") + 1
    col = len(text) - (text.rfind("\n") + 1) + 1
    return Span(file, line, col, col + 1)


@dataclass
class _Scan:
    stack: list[_Open]  # brackets open at the error, innermost last
    recent: list[Token]  # the last few tokens before it (new lines left out)
    declaring: str | None  # the block whose header (`block NAME(...) -> x`) is being written


def _scan(text: str, upto: int) -> _Scan:
    """Re-lex `text` up to offset `upto`: open brackets, labelled by what they belong to; recent tokens."""
    stack: list[_Open] = []
    recent: list[Token] = []
    declaring: str | None = None
    try:
        for token in grammar().lex(text[:upto]):
            kind = token.type
            if kind == "BLOCK" and not stack:
                declaring = ""
            elif kind in ("NAME", "STRING") and declaring == "" and recent and recent[-1].type == "BLOCK":
                declaring = str(token)
            if kind in _CLOSER:
                stack.append(_Open(kind, _label(kind, recent[-2:], stack, declaring), token.line or 0))
                if kind == "LBRACE" and declaring is not None and not stack[:-1]:
                    declaring = None
            elif kind in ("RPAR", "RSQB", "RBRACE") and stack and _CLOSER[stack[-1].kind] == str(token):
                stack.pop()
            if kind != "_NL":
                recent = (recent + [token])[-8:]
    except (UnexpectedInput, TooDeep):
        pass
    return _Scan(stack, recent, declaring or None)


def _label(kind: str, recent: list[Token], stack: list[_Open], declaring: str | None) -> str:
    last = recent[-1] if recent else None
    before = recent[-2] if len(recent) > 1 else None
    if kind == "LPAR":
        if last is not None and last.type == "NAME":
            if before is not None and before.type == "BLOCK":
                return f"the inputs of block '{last}'" if not stack else f"the arguments of block '{last}'"
            return f"the arguments of '{last}'"
        return "the parenthesised value"
    if kind == "LSQB":
        return f"the dimensions of '{last}'" if last is not None and last.type == "NAME" else "the array"
    if last is not None and last.type == "MODEL" and not stack:
        return "the model body"
    if declaring and not stack:
        return f"the body of block '{declaring}'"
    if last is not None and last.type in ("NAME", "STRING") and (before is None or before.type != "EQUAL"):
        return f"'{last}'"
    return "the table"
