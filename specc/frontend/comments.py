"""Comments through `fmt` and `convert`: find them, pin them to keys, put them back.

A comment is pinned to the key it precedes (``lead``), or to the key on whose
line it ends (``trail``), or to the closing brace of a table (``end``) — or,
after the last key, to the end of the file. Keys are found through the
`RawSpec`'s span table, so this works the same for TOML and the DSL. A printer
emits `Line`s, each tagged with the key path it begins (or the table it
closes); `render` then places every comment at the printed line that best
matches its key: the same key, else the first line inside it, else the
nearest enclosing one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Sequence

from specc.diagnostics import Origin
from specc.raw import Path, RawSpec


@dataclass(frozen=True)
class Comment:
    line: int
    col: int
    text: str


@dataclass(frozen=True)
class Pinned:
    kind: str  # "lead", "trail" or "foot"
    path: Path
    end: bool  # pinned to the closing brace of `path` rather than its key
    text: str
    col: int = 0  # where it stood in its source line


@dataclass
class Line:
    text: str
    path: Path | None = None  # the key this line begins
    end: Path | None = None  # the table this line closes
    blank: bool = False  # an empty line goes before it (and before its comments)
    lead: list[str] = field(default_factory=list)
    trail: list[Pinned] = field(default_factory=list)


# -- finding comments ------------------------------------------------------------------
def dsl_comments(text: str) -> list[Comment]:
    """`#` comments of DSL text (which has parsed), skipping strings."""
    out, line, start, i, n = [], 1, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, start = line + 1, i + 1
        elif ch == '"':
            i += 1
            while i < n and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
        elif ch == "#":
            j = _line_end(text, i)
            out.append(Comment(line, i - start + 1, text[i:j].rstrip()))
            i = j
            continue
        i += 1
    return out


def toml_comments(text: str) -> list[Comment]:
    """`#` comments of TOML text (which has parsed), skipping all four kinds of string."""
    out, line, start, i, n = [], 1, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, start = line + 1, i + 1
            i += 1
        elif ch == "#":
            j = _line_end(text, i)
            out.append(Comment(line, i - start + 1, text[i:j].rstrip()))
            i = j
        elif ch in "\"'":
            j = _string_end(text, i)
            newlines = text.count("\n", i, j)
            if newlines:
                line, start = line + newlines, text.rfind("\n", i, j) + 1
            i = j
        else:
            i += 1
    return out


def _line_end(text: str, i: int) -> int:
    j = text.find("\n", i)
    return len(text) if j < 0 else j


def _string_end(text: str, i: int) -> int:
    quote = text[i]
    triple = text.startswith(quote * 3, i)
    j = i + (3 if triple else 1)
    while j < len(text):
        if quote == '"' and text[j] == "\\":
            j += 2
        elif triple and text.startswith(quote * 3, j):
            j += 3
            while j < len(text) and text[j] == quote:  # up to two quotes may end the string's content
                j += 1
            return j
        elif not triple and text[j] in (quote, "\n"):
            return j + 1
        else:
            j += 1
    return j


# -- pinning ------------------------------------------------------------------------------
def pin(comments: list[Comment], raw: RawSpec, ends: Sequence[tuple[Path, int, int]] = ()) -> list[Pinned]:
    """Pin each comment to a key (or a table's closing brace) of `raw`'s own file."""
    anchors: list[tuple[int, int, int, Path, bool]] = []
    for table in (raw.spans.keys, raw.spans.values):
        for path, span in table.items():
            if span.file == raw.file and span.origin is Origin.FILE and span.line > 0:
                anchors.append((span.line, span.col, len(path), path, False))
    anchors += [(line, col, len(path), path, True) for path, line, col in ends]
    anchors.sort(key=lambda a: (a[0], a[1], -a[2]))  # at one place, the deepest key is the one written there
    positions = [(a[0], a[1]) for a in anchors]
    out = []
    for c in comments:
        i = bisect.bisect_left(positions, (c.line, 0))
        if i < len(anchors) and anchors[i][0] == c.line and anchors[i][1] < c.col:
            out.append(Pinned("trail", anchors[i][3], anchors[i][4], c.text, c.col))
            continue
        i = bisect.bisect_right(positions, (c.line, c.col))
        if i < len(anchors):
            out.append(Pinned("lead", anchors[i][3], anchors[i][4], c.text))
        else:
            out.append(Pinned("foot", (), False, c.text))
    return out


# -- placing ------------------------------------------------------------------------------
def render(lines: list[Line], pinned: list[Pinned], keep_columns: bool = False) -> str:
    """The printed text: `lines` with every pinned comment placed.

    With `keep_columns` (formatting in place), a trailing comment keeps its column
    where the line leaves room, so comments aligned by hand stay aligned.
    """
    foot: list[str] = []
    for p in pinned:
        index, kind = _place(lines, p)
        if index is None:
            foot.append(p.text)
        elif kind == "trail" and not lines[index].trail:
            lines[index].trail.append(p)
        else:  # a second comment for the end of one line goes on its own line above it
            lines[index].lead.append(p.text)
    out: list[str] = []
    for line in lines:
        indent = line.text[: len(line.text) - len(line.text.lstrip())]
        if line.end is not None:  # comments before a closing brace belong to the body it closes
            indent += "  "
        if line.blank and out:
            out.append("")
        out += [indent + text for text in line.lead]
        text = line.text
        for p in line.trail:
            gap = p.col - 1 - len(text) if keep_columns and p.col - 1 - len(text) >= 2 else 2
            text += " " * gap + p.text
        out.append(text)
    out += foot
    return "\n".join(out) + "\n" if out else ""


def _place(lines: list[Line], p: Pinned) -> tuple[int | None, str]:
    """The line a pinned comment goes with, and whether it leads or trails it (None: end of file)."""
    if p.kind == "foot":
        return None, "foot"
    if p.end:
        for i, line in enumerate(lines):
            if line.end == p.path:
                return i, p.kind
        # No closing line in this form (TOML): on its own line after the table's last line.
        inside = [i for i, line in enumerate(lines) if line.path is not None and line.path[: len(p.path)] == p.path]
        if inside:
            return (inside[-1] + 1, "lead") if inside[-1] + 1 < len(lines) else (None, "foot")
    inside_at = next((i for i, line in enumerate(lines) if line.path is not None and line.path[: len(p.path)] == p.path),
                     None)
    around = max(((len(line.path), i) for i, line in enumerate(lines)
                  if line.path is not None and p.path[: len(line.path)] == line.path), default=None)
    if p.kind == "trail":
        if around is not None:
            return around[1], "trail"
        return inside_at, "trail"
    return (inside_at if inside_at is not None else around[1] if around else None), "lead"
