"""The DSL's grammar and lexer guards: bracket depth, token count, control characters in comments.

Shared by the parser (`dsl`) and its error messages (`dsl_errors`), which re-lex
text to say what an unexpected token interrupted.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterator

from lark import Lark, Token

from specc.frontend.limits import MAX_DSL_TOKENS

MAX_BRACKETS = 64
_OPEN = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSE = {v: k for k, v in _OPEN.items()}


class TooDeep(Exception):
    def __init__(self, token: Token):
        super().__init__(str(token))
        self.token = token


class TooMany(TooDeep):
    """More than `MAX_DSL_TOKENS` tokens: raised while lexing, so a huge input costs no more than that."""


class ControlInComment(TooDeep):
    """A control character in a comment, which TOML refuses too (so `specc convert` could not write it)."""


def _check_comment(token: Token) -> Token:
    """Lexer callback for comments: tabs and a line's closing carriage return only."""
    body = token.value[:-1] if token.value.endswith("\r") else token.value
    for i, ch in enumerate(body):
        if (ord(ch) < 32 and ch != "\t") or ord(ch) == 127:
            raise ControlInComment(Token("COMMENT", ch, line=token.line, column=(token.column or 1) + i))
    return token


class _Brackets:
    """Post-lexer: new lines separate statements only outside ( ) and [ ]."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        stack: list[str] = []
        for count, token in enumerate(stream):
            if count == MAX_DSL_TOKENS:
                raise TooMany(token)
            kind = token.type
            if kind in _OPEN:
                stack.append(kind)
                if len(stack) > MAX_BRACKETS:
                    raise TooDeep(token)
            elif kind in _CLOSE and stack and stack[-1] == _CLOSE[kind]:
                stack.pop()
            if kind == "_NL" and stack and stack[-1] != "LBRACE":
                continue
            yield token


@lru_cache(maxsize=1)
def grammar() -> Lark:
    here = Path(__file__).parent
    # `%import expr` takes the expression rules from specc/expr.lark, the evaluator's own grammar.
    return Lark.open(str(here / "dsl.lark"), parser="lalr", start=["start", "value"], propagate_positions=True,
                     maybe_placeholders=False, postlex=_Brackets(), import_paths=[str(here.parent)],
                     lexer_callbacks={"COMMENT": _check_comment})
