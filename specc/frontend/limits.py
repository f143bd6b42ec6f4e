"""Size limits of spec text, so that any input is read in well under a second.

Real specs are a few kilobytes (the largest in `specs/` is 5 KB). Both front
ends take time linear in their input, the DSL's parser about 20 µs per token,
so the limits bound the time any text can cost: 128 K characters in either
form, and 20,000 tokens in the DSL.
"""

from __future__ import annotations

from specc.diagnostics import Diagnostic, Span, SpecError

MAX_SPEC_CHARS = 128 * 1024
MAX_DSL_TOKENS = 20_000


def check_length(text: str, file: str) -> None:
    """A `SpecError` if `text` is longer than any spec needs to be."""
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError([Diagnostic("E002", f"spec text is {len(text):,} characters; the limit is {MAX_SPEC_CHARS:,}",
                                    Span(file), "a spec this long is almost certainly not one; split it with 'extends'")])


def too_many_tokens(file: str, line: int, col: int) -> SpecError:
    return SpecError([Diagnostic("E002", f"spec has more than {MAX_DSL_TOKENS:,} tokens", Span(file, line, col),
                                 "a spec this long is almost certainly not one; split it with 'extends'")])
