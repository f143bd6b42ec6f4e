"""Record where every key and value of a TOML document is written.

`tomllib` parses values but reports positions only for syntax errors, so this
scanner walks the (already valid) text once more and maps each key path, such
as ``("model", "nodes", "attn", "heads")``, to the span of its key and of its
value. It assumes the text parsed with `tomllib` first, so it can be lenient.
"""

from __future__ import annotations

import bisect
import sys

from specc.diagnostics import Span
from specc.raw import Path, SpanTable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib


class _Scanner:
    def __init__(self, text: str, file: str):
        self.text, self.file, self.pos = text, file, 0
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self.out = SpanTable()
        self.aot_count: dict[Path, int] = {}

    # -- positions -------------------------------------------------------
    def span(self, start: int, end: int) -> Span:
        line = bisect.bisect_right(self.line_starts, start) - 1
        col = start - self.line_starts[line] + 1
        end_line = bisect.bisect_right(self.line_starts, max(end - 1, start)) - 1
        end_col = end - self.line_starts[line] + 1 if end_line == line else col + 1
        return Span(self.file, line + 1, col, end_col)

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.pos += 1
            elif ch == "#":
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.pos += 1
            else:
                return

    # -- document --------------------------------------------------------
    def document(self) -> SpanTable:
        table: Path = ()
        while True:
            self.skip_space(newlines=True)
            if self.pos >= len(self.text):
                return self.out
            if self.peek(2) == "[[":
                self.pos += 2
                table = self.header("]]", array=True)
            elif self.peek() == "[":
                self.pos += 1
                table = self.header("]", array=False)
            else:
                self.key_value(table)

    def header(self, close: str, array: bool) -> Path:
        start = self.pos
        keys = self.dotted_key()
        segments = self.segments
        self.skip_space(newlines=False)
        self.pos += len(close)
        path: Path = ()
        for i, key in enumerate(keys):
            path = path + (key,)
            last = i == len(keys) - 1
            if not last:  # `[a.b.c]` also writes tables a and a.b: a mistake in their names points here
                self.out.keys.setdefault(path, self.span(*segments[i]))
            if array and last:
                index = self.aot_count.get(path, 0)
                self.aot_count[path] = index + 1
                self.out.keys.setdefault(path, self.span(start, self.pos))
                path = path + (index,)
            elif path in self.aot_count:
                path = path + (self.aot_count[path] - 1,)
        self.out.keys.setdefault(path, self.span(start, self.pos - len(close)))
        self.out.values.setdefault(path, self.span(start, self.pos - len(close)))
        return path

    def key_value(self, prefix: Path) -> None:
        start = self.pos
        keys = self.dotted_key()
        path = prefix + tuple(keys)
        for i, segment in enumerate(self.segments[:-1]):  # `a.b = 1` also writes table a
            self.out.keys.setdefault(prefix + tuple(keys[: i + 1]), self.span(*segment))
        end = self.pos
        while end > start and self.text[end - 1] in " \t":  # the key, not the space before '='
            end -= 1
        self.out.keys[path] = self.span(start, end)
        self.skip_space(newlines=False)
        self.pos += 1  # '='
        self.skip_space(newlines=False)
        self.value(path)

    def dotted_key(self) -> list[str]:
        """The parts of a dotted key; `self.segments` holds where each is written (start, end)."""
        keys = []
        self.segments: list[tuple[int, int]] = []
        while True:
            self.skip_space(newlines=False)
            start = self.pos
            keys.append(self.simple_key())
            self.segments.append((start, self.pos))
            self.skip_space(newlines=False)
            if self.peek() != ".":
                return keys
            self.pos += 1

    def simple_key(self) -> str:
        ch = self.peek()
        if ch in "\"'":
            start = self.pos
            self.string()
            quoted = self.text[start : self.pos]
            return tomllib.loads(f"k = {quoted}")["k"] if ch == '"' and "\\" in quoted else quoted[1:-1]
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_-"):
            self.pos += 1
        return self.text[start : self.pos]

    # -- values ----------------------------------------------------------
    def value(self, path: Path) -> None:
        start = self.pos
        ch = self.peek()
        if ch == "{":
            self.inline_table(path)
        elif ch == "[":
            self.array(path)
        elif ch in "\"'":
            self.string()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.pos += 1
            end = self.pos
            while end > start and self.text[end - 1] in " \t\r":
                end -= 1
            self.out.values[path] = self.span(start, end)
            return
        self.out.values[path] = self.span(start, self.pos)

    def inline_table(self, path: Path) -> None:
        self.pos += 1
        while True:
            self.skip_space(newlines=True)
            if self.peek() == "}":
                self.pos += 1
                return
            if self.peek() == ",":
                self.pos += 1
                continue
            self.key_value(path)

    def array(self, path: Path) -> None:
        self.pos += 1
        index = 0
        while True:
            self.skip_space(newlines=True)
            ch = self.peek()
            if ch == "]" or not ch:
                self.pos += 1
                return
            if ch == ",":
                self.pos += 1
                continue
            self.value(path + (index,))
            index += 1

    def string(self) -> None:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.text.find(quote * 3, self.pos + 3)
            self.pos = end + 3
            while self.peek() == quote:  # up to two quotes may close a multi-line string
                self.pos += 1
            return
        self.pos += 1
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and quote == '"':
                self.pos += 2
                continue
            self.pos += 1
            if ch == quote or ch == "\n":
                return


def scan(text: str, file: str) -> SpanTable:
    """Spans of every key and value in `text` (which must be valid TOML)."""
    return _Scanner(text, file).document()
