"""Name patterns over qualified names (parameters such as ``h.3.attn.qkv.weight``, layers such as ``h.3.attn.qkv``).

``*`` matches anything (dots included), ``?`` one character, and a ``A:B``
component a layer index in ``A .. B-1`` (``layer.0:2.*`` is the first two
layers of a repeated block). Used by a task's `freeze` and `reinit` and by
the adapters' `targets`.
"""

from __future__ import annotations

import re
from typing import Sequence


def pattern(text: str) -> re.Pattern[str]:
    """A name pattern as a regular expression."""
    parts = []
    for component in text.split("."):
        span = re.fullmatch(r"(\d+):(\d+)", component)
        if span:
            lo, hi = int(span.group(1)), int(span.group(2))
            parts.append("(?:" + "|".join(str(i) for i in range(lo, hi)) + ")" if hi > lo else "(?!)")
        else:
            parts.append("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in component))
    return re.compile(r"\.".join(parts))


def matches(name: str, patterns: Sequence[str]) -> bool:
    return any(pattern(p).fullmatch(name) for p in patterns)
