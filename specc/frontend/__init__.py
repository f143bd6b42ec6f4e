"""Front ends: read a spec file (TOML, or the DSL) into a `RawSpec`.

`parse` also follows `extends` (from the spec's folder, the search paths, then
the specs shipped with specc; never outside those folders: see
`specc.frontend.bases`) and applies ``--set`` overrides, so later stages see
one merged tree with provenance for each value.
"""

from __future__ import annotations

import copy
import datetime
import os
import stat
from pathlib import Path
from typing import Callable, Sequence

from specc.diagnostics import Diagnostic, Origin, Span, SpecError
from specc.frontend.bases import Roots, resolve_base
from specc.frontend.limits import MAX_SPEC_CHARS
from specc.frontend.toml import parse_toml
from specc.raw import MAX_DEPTH, RawSpec, SpanTable, apply_set, merge_base

MAX_FILE_BYTES = 4 * MAX_SPEC_CHARS  # refused unread; the front ends count characters
MAX_EXTENDS_DEPTH = 16

Parser = Callable[[str, str], RawSpec]
_PARSERS: dict[str, Parser] = {".toml": parse_toml}


def register_front_end(suffix: str, parser: Parser) -> None:
    """Let another front end (the DSL) claim a file suffix."""
    _PARSERS[suffix] = parser


def _parse_dsl(text: str, file: str) -> RawSpec:
    # The DSL's parser (and lark) load with the first DSL file: `specc ops` and TOML specs never need them.
    from specc.frontend.dsl import parse_dsl

    return parse_dsl(text, file)


register_front_end(".spec", _parse_dsl)


def parse_text(text: str, file: str) -> RawSpec:
    """Parse spec text by the suffix of `file` (no `extends`, no overrides)."""
    parser = _PARSERS.get(Path(file).suffix)
    if parser is None:
        known = ", ".join(sorted(_PARSERS))
        raise SpecError([Diagnostic("E003", f"unknown spec format '{Path(file).suffix}' (known: {known})", Span(file))])
    return parser(text, file)


def parse(
    path: str | os.PathLike[str],
    sets: Sequence[str] = (),
    search_paths: Sequence[str | os.PathLike[str]] = (),
    text: str | None = None,
) -> RawSpec:
    """Read `path`, follow `extends`, apply `--set key.path=value` overrides.

    With `text`, that is the spec's content as if it were written at `path`
    (an old revision git hands over in a temporary file: its `extends` still
    resolve next to `path`).
    """
    file = Path(path)
    raw = apply_cli_sets(_load_chain(file, Roots.of(file, search_paths), [], text), sets)
    _refuse_dates(raw)
    return raw


def apply_cli_sets(raw: RawSpec, sets: Sequence[str]) -> RawSpec:
    """A copy of `raw` with `--set key.path=value` overrides applied."""
    if not sets:
        return raw
    out = RawSpec(copy.deepcopy(raw.data), SpanTable(dict(raw.spans.keys), dict(raw.spans.values)), raw.file, raw.sources,
                  list(raw.bases))
    for item in sets:
        _apply_cli_set(out, item)
    return out


def read_source(file: Path) -> str:
    """The text of a spec file; missing, huge, non-UTF-8 files, and anything but a regular file (a FIFO, a device,
    a folder: reading one may block forever or never end), are diagnostics."""
    name = str(file)
    try:
        data = _read_regular(file)
    except FileNotFoundError:
        raise SpecError([Diagnostic("E002", "spec file not found", Span(name))]) from None
    except IsADirectoryError:
        raise SpecError([Diagnostic("E002", "expected a spec file, found a folder", Span(name))]) from None
    except OSError as err:
        raise SpecError([Diagnostic("E002", f"cannot read spec file: {err.strerror}", Span(name))]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError([Diagnostic("E001", "spec file is not valid UTF-8", Span(name, line, col))]) from None


def _read_regular(file: Path) -> bytes:
    """The bytes of `file` if it is a regular file of at most MAX_FILE_BYTES. Opened without blocking (a FIFO's
    open waits for a writer) and checked on the open descriptor, so nothing can swap the file in between."""
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(file)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError([Diagnostic("E002", f"expected a spec file, found {_kind(info.st_mode)}", Span(str(file)),
                                        "a spec is read from a regular file")])
        if info.st_size > MAX_FILE_BYTES:
            raise SpecError([Diagnostic("E002", f"spec file is {info.st_size} bytes; the limit is {MAX_FILE_BYTES}",
                                        Span(str(file)))])
        chunks = []
        while chunk := os.read(fd, 1 << 20):  # on the descriptor itself: no second open
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _load_chain(file: Path, roots: Roots, seen: list[Path], text: str | None = None) -> RawSpec:
    raw = parse_text(read_source(file) if text is None else text, str(file))
    base_ref = raw.data.pop("extends", None)
    if base_ref is None:
        return raw
    span = raw.value_span(("extends",))
    if not isinstance(base_ref, str):
        raise SpecError([Diagnostic("E004", "'extends' must be a path string", span)])
    found = resolve_base(file, base_ref, roots, span)
    base_file = Path(found.file)
    chain = seen + [file.resolve()]
    if base_file.resolve() in chain:
        raise SpecError([Diagnostic("E004", f"'extends' forms a cycle through '{base_ref}'", span)])
    if len(chain) > MAX_EXTENDS_DEPTH:
        raise SpecError([Diagnostic("E004", f"'extends' chain is deeper than {MAX_EXTENDS_DEPTH}", span)])
    base = _load_chain(base_file, roots, chain)
    raw.spans.keys.pop(("extends",), None)
    raw.spans.values.pop(("extends",), None)
    raw.bases = [found]
    return merge_base(base, raw)


def set_path(item: str) -> tuple[str, ...]:
    """The key path of an override ``path.to.key=value``; E005 if it has none."""
    key, sep, _ = item.partition("=")
    parts = tuple(p.strip() for p in key.split("."))
    if not sep or not all(parts):
        raise SpecError([Diagnostic("E005", f"--set expects path.to.key=value, got '{item}'")])
    return parts


def _apply_cli_set(raw: RawSpec, item: str) -> None:
    # No line: the "file" names the override itself, so a diagnostic says which --set is at fault.
    span = Span(f"--set {item}", origin=Origin.CLI)
    apply_set(raw, set_path(item), _parse_cli_value(item.partition("=")[2].strip(), item), span)


def _parse_cli_value(text: str, item: str) -> object:
    """A TOML value if `text` is one (`512`, `true`, `"x"`, `[0.9, 0.95]`), else the text itself. Nesting is
    bounded first: the TOML parser recurses once per bracket."""
    import tomllib

    if _nesting(text) > MAX_DEPTH:
        raise SpecError([Diagnostic("E005", f"--set value nests arrays or tables more than {MAX_DEPTH} deep",
                                    Span(f"--set {item}", origin=Origin.CLI))])
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except ValueError:  # an integer of more than 4300 digits
        raise SpecError([Diagnostic("E005", "--set value is a number literal too long to be one",
                                    Span(f"--set {item}", origin=Origin.CLI))]) from None


def _nesting(text: str) -> int:
    """The deepest run of open brackets and braces in `text` (strings included: an over-estimate is safe)."""
    deepest = level = 0
    for ch in text:
        if ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level = max(0, level - 1)
    return deepest


def _refuse_dates(raw: RawSpec) -> None:
    """TOML dates and times are no spec value (no field takes one; hashes, diffs and JSON could not carry one)."""
    stack: list[tuple[tuple, object]] = [((), raw.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((path + (k,), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((path + (i,), v) for i, v in enumerate(value))
        elif isinstance(value, (datetime.date, datetime.time)):
            where = ".".join(map(str, path))
            raise SpecError([Diagnostic("E001", f"'{where}' is a TOML date or time, which no spec key takes",
                                        raw.value_span(path), f'write it as a string: "{value.isoformat()}"')])
