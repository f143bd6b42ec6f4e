"""Pretraining documents from files: plain text, JSONL, Parquet, `datasets` folders, compressed or not.

`corpus_files` lists what a declared path holds: one file, or a folder's files
matched by the declared ``include`` globs (default: the suffixes the source
reads). Every file it does not read is counted by suffix with the reason, so a
folder never skips a ``.md`` without saying so. `file_documents` streams one
file's documents; a bad record (bytes that are not UTF-8, a line that is not
JSON, a row without the text field) goes to the caller's `bad` callback, which
stops the run or counts it.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from specc import jsonfile
from specc.runtime.config import MAX_LINE_BYTES
from specc.runtime.errors import UserError
from specc.runtime.data.formats.compression import COMPRESSED, Stored, compression_of, decompress_errors, full_suffix, inner_suffix, \
    open_stored

Bad = Callable[[str], None]  # a bad record's description: raises (stop) or counts it (skip)
Opened = Callable[[Stored], None]  # told of each file a reader opens (its position drives progress bars)

TEXT = (".txt", ".md", ".rst", ".text")
JSONL = (".jsonl", ".ndjson")
PARQUET = (".parquet",)
KIND_OF_SUFFIX = {**{s: "text" for s in TEXT}, **{s: "jsonl" for s in JSONL}, **{s: "parquet" for s in PARQUET}}
READS = {"text": TEXT, "jsonl": JSONL, "parquet": PARQUET, "auto": TEXT + JSONL + PARQUET}


@dataclass
class Listing:
    """The files a corpus reads, and the ones it passes over: counts by suffix, with why."""

    files: list[Path]
    skipped: dict[str, collections.Counter[str]] = field(default_factory=dict)  # why -> suffix -> files

    def lines(self) -> list[str]:
        out = [f"read {len(self.files)} file{'s' * (len(self.files) != 1)}" +
               (f" ({_counts(collections.Counter(full_suffix(f) for f in self.files))})" if self.files else "")]
        for why, counts in self.skipped.items():
            n = sum(counts.values())
            out.append(f"skipped {n} file{'s' * (n != 1)} ({_counts(counts)}): {why}")
        return out


def _counts(counts: collections.Counter[str]) -> str:
    return ", ".join(f"{suffix} ×{n}" for suffix, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def corpus_files(path: Path, source: str, include: list[str]) -> Listing:
    """The files of a declared path: itself, or a folder's files that `include` (or the source's suffixes) match."""
    if source == "datasets":
        if not path.is_dir():
            raise UserError(f"[data] source = 'datasets' reads a folder written by save_to_disk; {path} is not one")
        return Listing([path])
    if path.is_file():
        return Listing([path])
    if not path.is_dir():
        raise UserError(f"data file not found: {path}")
    reads = READS[source]
    listing = Listing([])
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path)
        why = _why_not(rel, f, reads, include)
        if why is None:
            listing.files.append(f)
        else:
            listing.skipped.setdefault(why, collections.Counter())[full_suffix(f)] += 1
    if not listing.files:
        wanted = f"include {include}" if include else f"{', '.join(reads)} (optionally {', '.join(COMPRESSED)})"
        passed = listing.lines()[1:]
        raise UserError(f"data folder {path} holds no files to read ({wanted})" + (f"; {'; '.join(passed)}" if passed else ""))
    return listing


def _why_not(rel: Path, f: Path, reads: tuple[str, ...], include: list[str]) -> str | None:
    """Why a folder's file is not read (None: it is)."""
    if any(part.startswith(".") for part in rel.parts):
        return "hidden (a name starting with '.')"
    if include:
        return None if any(_matches(rel, g) for g in include) else f"not matched by [data] include = {include}"
    if inner_suffix(f) not in reads:
        return f"not a suffix this source reads ({', '.join(reads)}); list the files with [data] include = [\"**/*.md\", ...]"
    return None


def _matches(rel: Path, glob: str) -> bool:
    """A folder-relative path against a glob: ``*.md`` at any depth (matched from the right, as Path.match does),
    ``sub/*.md`` only in sub; a leading ``**/`` also matches at the top."""
    return rel.match(glob) or (glob.startswith("**/") and rel.match(glob[3:]))


def kind_of(path: Path, source: str) -> str:
    """How one file is read: as the declared source says, or (source = "auto") by its suffix (text when unknown)."""
    if source == "auto":
        return KIND_OF_SUFFIX.get(inner_suffix(path), "text")
    return source


def file_documents(path: Path, kind: str, text_field: str, bad: Bad, opened: Opened | None = None,
                   max_line: int = MAX_LINE_BYTES) -> Iterator[str]:
    if kind == "text":
        yield from text_documents(path, bad, opened, max_line)
    elif kind == "jsonl":
        yield from jsonl_documents(path, text_field, bad, opened, max_line)
    else:
        yield from _row_documents(path, kind, text_field, bad)


def lines(path: Path, bad: Bad, opened: Opened | None = None, max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(line number, text) of a (possibly compressed) UTF-8 file; a line that is not UTF-8, or longer than
    `max_line` bytes (read no further: its memory stays bounded), is a bad record, a damaged compressed file
    an error naming it."""
    with open_stored(path) as fh:
        n = 0
        if opened is not None:
            opened(fh)
        while True:
            try:
                raw = fh.stream.readline(max_line + 1)
                long = len(raw) > max_line and not raw.endswith(b"\n")
                while long and raw:  # the rest of the over-long line, a block at a time
                    raw = fh.stream.readline(1 << 20)
                    if raw.endswith(b"\n"):
                        break
            except decompress_errors() as err:
                if compression_of(path) is None:
                    raise
                raise UserError(f"{path}: cannot decompress ({err})") from None
            if not raw and not long:
                return
            n += 1
            if long:
                bad(f"{path}:{n}: a line of more than {max_line:,} bytes ([data] max_line_bytes = {max_line})")
                continue
            try:
                # as text mode reads them; a leading byte-order mark is no text's (nor a field name's)
                yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8").replace("\r\n", "\n").replace("\r", "\n")
            except UnicodeDecodeError as err:
                bad(f"{path}:{n}:{err.start + 1}: not UTF-8 text ({err.reason})")


def text_documents(path: Path, bad: Bad, opened: Opened | None = None, max_line: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Documents of a text file: separated by two or more blank lines (or one per file)."""
    buf: list[str] = []
    blanks = 0
    for _, line in lines(path, bad, opened, max_line):
        if line.strip():
            if blanks >= 2 and buf:
                yield "".join(buf).strip()
                buf = []
            blanks = 0
            buf.append(line)
        else:
            blanks += 1
            buf.append(line)
    if "".join(buf).strip():
        yield "".join(buf).strip()


def jsonl_documents(path: Path, text_field: str, bad: Bad, opened: Opened | None = None,
                    max_line: int = MAX_LINE_BYTES) -> Iterator[str]:
    for n, line in lines(path, bad, opened, max_line):
        if not line.strip():
            continue
        try:
            record = jsonfile.parse(line)
        except jsonfile.BadJSON as err:
            bad(f"{jsonfile.place(path, n, err)}: invalid JSON: {err}")
            continue
        text = _field(record, text_field)
        if not isinstance(text, str):
            bad(f"{path}:{n}: record has no text field '{text_field}'")
            continue
        yield text


def _row_documents(path: Path, kind: str, text_field: str, bad: Bad) -> Iterator[str]:
    from specc.runtime.data.formats.arrow import stream

    for record in stream(path, kind):
        text = _field(record.fields, text_field)
        if not isinstance(text, str):
            bad(f"{record.where}: row has no text field '{text_field}'")
            continue
        yield text


def _field(record: object, name: str) -> object:
    """A field by name, or a dotted path into nested objects (``meta.text``); None when absent."""
    if isinstance(record, dict) and name in record:
        return record[name]
    value = record
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
