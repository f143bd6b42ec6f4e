"""Corpora: where documents come from.

A `Corpus` streams documents (the embedded default corpus is CPython's own
documentation text, `pydoc_data.topics`; real data comes from text, JSONL or
Parquet files, compressed or not, folders of them, or a `datasets` folder,
read by `specc.runtime.data.formats.documents`) and splits them into train and validation sets
deterministically. A bad record (a line that is not UTF-8, not JSON, or
lacks the text field) or an empty file is an error naming the file and line,
found while the tokenizer and token stores are built, before training; with
``[data] on_bad_record = "skip"`` it is passed over and counted instead. Token
stores (`specc.runtime.data.tokens`) are written from `Corpus.stream`, which reads
the corpus once for both splits (`specc.runtime.data.prepare`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

from specc.runtime.config import MAX_LINE_BYTES, DataConfig, held_out_every
from specc.runtime.errors import UserError
from specc.runtime.data.formats.compression import Stored
from specc.runtime.data.formats.documents import Listing, corpus_files, file_documents, kind_of

Split = str  # "train" or "val"


class Doc(NamedTuple):
    """One document of the stream: its split, its text, and how far into the corpus as stored on
    disk reading had got when it was read (bytes; for progress and ETAs)."""

    val: bool
    text: str
    position: int


@dataclass(frozen=True)
class Corpus:
    """Documents from one declared source, split deterministically."""

    cfg: DataConfig
    base: Path  # folder relative paths are resolved against (the spec's folder)

    def documents(self, split: Split, skipped: Skipped | None = None) -> Iterator[str]:
        """The split's documents; bad records passed over (``on_bad_record = "skip"``) are noted in `skipped`."""
        for doc in self.stream(skipped):
            if doc.val == (split == "val"):
                yield doc.text

    def stream(self, skipped: Skipped | None = None) -> Iterator[Doc]:
        """Every document once, in corpus order, with its split: one pass serves both splits."""
        meter = _Meter()
        for i, text in enumerate(self._all(skipped if skipped is not None else Skipped(), meter)):
            yield Doc(self._is_val(i), text, meter.position())

    def stored_bytes(self) -> int:
        """Size of the corpus as stored (what `Doc.position` runs up to)."""
        if self.cfg.source == "default":
            return sum(len(d.encode()) for d in default_documents())
        return sum(_size(f) for f in self._files())

    def fingerprint(self) -> str:
        """Identity of the corpus for caches: content hash (default) or file names, sizes, mtimes."""
        settings = self.cfg.model_dump()
        if settings["max_line_bytes"] == MAX_LINE_BYTES:  # caches from before the setting existed stay valid
            del settings["max_line_bytes"]
        h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        if self.cfg.source == "default":
            for doc in default_documents():
                h.update(doc.encode())
        else:
            for f in self._files():
                st = f.stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:20]

    def _is_val(self, index: int) -> bool:
        # Every k-th document, with k from the declared fraction: deterministic and streamable.
        every = held_out_every(self.cfg.val_fraction)
        return index % every == every - 1

    def _all(self, skipped: Skipped, meter: _Meter) -> Iterator[str]:
        limit = self.cfg.max_documents
        for i, doc in enumerate(self._source(skipped, meter)):
            if limit is not None and i >= limit:
                return
            yield doc

    def _source(self, skipped: Skipped, meter: _Meter) -> Iterator[str]:
        if self.cfg.source == "default":
            for doc in default_documents():
                meter.done += len(doc.encode())
                yield doc
            return
        bad = skipped if self.cfg.on_bad_record == "skip" else None
        for f in self._files():
            found = False
            for doc in file_documents(f, kind_of(f, self.cfg.source), self.cfg.text_field, lambda what: _bad(bad, what),
                                      meter.opened, self.cfg.max_line_bytes):
                found = True
                yield doc
            meter.file = None
            meter.done += _size(f)
            if not found:
                _bad(bad, f"{f}: empty data file (no documents)")

    def listing(self) -> Listing:
        """The files the corpus reads and those it passes over (by suffix, with why), for the run's report."""
        if self.cfg.source == "default":
            return Listing([])
        if self.cfg.path is None:
            raise UserError(f"[data] source = '{self.cfg.source}' needs a path")
        path = Path(self.cfg.path)
        return corpus_files(path if path.is_absolute() else self.base / path, self.cfg.source, self.cfg.include)

    def _files(self) -> list[Path]:
        return self.listing().files


def _size(path: Path) -> int:
    """Bytes of a file, or of a folder's files (a datasets folder)."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class _Meter:
    """How far into the stored corpus reading has got: whole files done, plus the open one's position."""

    done: int = 0
    file: Stored | None = None

    def opened(self, file: Stored) -> None:
        self.file = file

    def position(self) -> int:
        return self.done + (self.file.position() if self.file is not None else 0)


def default_documents(target_chars: int = 2000) -> Iterator[str]:
    """CPython's documentation topics (present with every Python), in name order, cut at
    paragraph breaks into documents of about `target_chars`, so that the validation split
    samples every part of the documentation rather than a few whole topics."""
    from pydoc_data.topics import topics

    for name in sorted(topics):
        piece: list[str] = []
        size = 0
        for para in topics[name].strip().split("\n\n"):
            piece.append(para)
            size += len(para) + 2
            if size >= target_chars:
                yield "\n\n".join(piece).strip()
                piece, size = [], 0
        if "".join(piece).strip():
            yield "\n\n".join(piece).strip()


@dataclass
class Skipped:
    """Bad records passed over under ``on_bad_record = "skip"``: how many, and the first few."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(what)


def _bad(skipped: Skipped | None, what: str) -> None:
    """A bad record: an error, or (when skipping) one more passed over."""
    if skipped is None:
        raise UserError(what + ' (or declare [data] on_bad_record = "skip" to pass over bad records)')
    skipped.add(what)
