"""Corpora and token stores.

A `Corpus` streams documents (the embedded default corpus is CPython's own
documentation text, `pydoc_data.topics`; real data comes from text, JSONL or
Parquet files, compressed or not, folders of them, or a `datasets` folder,
read by `specc.runtime.formats.documents`) and splits them into train and validation sets
deterministically. A bad record (a line that is not UTF-8, not JSON, or
lacks the text field) or an empty file is an error naming the file and line,
found while the tokenizer and token stores are built, before training; with
``[data] on_bad_record = "skip"`` it is passed over and counted instead. A `TokenStore` holds a split's token ids in a memory-mapped
file written once and reused, so a corpus larger than memory is never loaded
into RAM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from specc.atomic import atomic_dir
from specc.runtime.config import DataConfig
from specc.runtime.errors import UserError
from specc.runtime.formats.documents import Listing, corpus_files, file_documents, kind_of
from specc.runtime.tokenizer import TextTokenizer, cache_dir

Split = str  # "train" or "val"


@dataclass(frozen=True)
class Corpus:
    """Documents from one declared source, split deterministically."""

    cfg: DataConfig
    base: Path  # folder relative paths are resolved against (the spec's folder)

    def documents(self, split: Split, skipped: Skipped | None = None) -> Iterator[str]:
        """The split's documents; bad records passed over (``on_bad_record = "skip"``) are noted in `skipped`."""
        for i, doc in enumerate(self._all(skipped if skipped is not None else Skipped())):
            if self._is_val(i) == (split == "val"):
                yield doc

    def fingerprint(self) -> str:
        """Identity of the corpus for caches: content hash (default) or file names, sizes, mtimes."""
        h = hashlib.sha256(json.dumps(self.cfg.model_dump(), sort_keys=True).encode())
        if self.cfg.source == "default":
            for doc in self._all(Skipped()):
                h.update(doc.encode())
        else:
            for f in self._files():
                st = f.stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:20]

    def _is_val(self, index: int) -> bool:
        # Every k-th document, with k from the declared fraction: deterministic and streamable.
        every = max(2, round(1 / self.cfg.val_fraction))
        return index % every == every - 1

    def _all(self, skipped: Skipped) -> Iterator[str]:
        limit = self.cfg.max_documents
        for i, doc in enumerate(self._source(skipped)):
            if limit is not None and i >= limit:
                return
            yield doc

    def _source(self, skipped: Skipped) -> Iterator[str]:
        if self.cfg.source == "default":
            yield from default_documents()
            return
        bad = skipped if self.cfg.on_bad_record == "skip" else None
        for f in self._files():
            found = False
            for doc in file_documents(f, kind_of(f, self.cfg.source), self.cfg.text_field, lambda what: _bad(bad, what)):
                found = True
                yield doc
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


class TokenStore:
    """A split's token ids (memory-mapped) and its document boundaries.

    `ids[offsets[d]:offsets[d + 1]]` are the tokens of document `d` followed by
    one end-of-sequence separator.
    """

    def __init__(self, folder: Path):
        meta = json.loads((folder / "meta.json").read_text())
        self.skipped = Skipped(meta.get("skipped", 0), meta.get("skipped_first", []))  # of the whole corpus
        self.ids = np.memmap(folder / "ids.bin", dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["tokens"],))
        self.offsets = np.load(folder / "offsets.npy")
        self.folder = folder

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def doc(self, d: int) -> np.ndarray:
        """Tokens of document `d`, without its separator."""
        return np.asarray(self.ids[self.offsets[d] : self.offsets[d + 1] - 1], dtype=np.int64)

    def window(self, start: int, length: int) -> np.ndarray:
        """`length` consecutive ids of the packed stream (documents joined by separators)."""
        return np.asarray(self.ids[start : start + length], dtype=np.int64)


def token_store(corpus: Corpus, split: Split, tok: TextTokenizer, progress: Callable[[int], None] | None = None) -> TokenStore:
    """The cached store of `split` tokenised with `tok`, writing it once if missing."""
    key = hashlib.sha256(f"{corpus.fingerprint()}:{tok.fingerprint()}:{split}".encode()).hexdigest()[:20]
    folder = cache_dir() / "tokens" / key
    if not (folder / "meta.json").exists():
        skipped = Skipped()
        _write_store(corpus.documents(split, skipped), tok, folder, progress, skipped)
    store = TokenStore(folder)
    if store.n_docs == 0 or len(store) == 0:
        raise UserError(f"the {split} split of the corpus is empty")
    return store


def _write_store(docs: Iterator[str], tok: TextTokenizer, folder: Path, progress: Callable[[int], None] | None,
                 skipped: Skipped) -> None:
    """Tokenise documents in chunks straight into a file; rename into place when complete (a bad record
    or any other failure leaves no partial store behind)."""
    dtype = np.uint16 if tok.vocab_size <= 65535 else np.uint32
    offsets = [0]
    try:
        with atomic_dir(folder) as tmp:
            with open(tmp / "ids.bin", "wb") as out:
                chunk: list[str] = []
                for doc in docs:
                    chunk.append(doc)
                    if len(chunk) == 256:
                        _flush(chunk, tok, out, offsets, dtype, progress)
                _flush(chunk, tok, out, offsets, dtype, progress)
            np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
            (tmp / "meta.json").write_text(json.dumps({"dtype": np.dtype(dtype).name, "tokens": offsets[-1],
                                                       "skipped": skipped.count, "skipped_first": skipped.first}))
    except OSError:  # another process finished it first (the rename onto its folder fails)
        if not (folder / "meta.json").exists():
            raise


def _flush(chunk: list[str], tok: TextTokenizer, out, offsets: list[int], dtype, progress) -> None:  # type: ignore[no-untyped-def]
    eos = tok.specials.eos
    for ids in tok.encode_batch(chunk):
        ids.append(eos)  # each document ends with a separator, so packed windows are plain slices
        np.asarray(ids, dtype=dtype).tofile(out)
        offsets.append(offsets[-1] + len(ids))
    if progress is not None:
        progress(len(chunk))
    chunk.clear()
