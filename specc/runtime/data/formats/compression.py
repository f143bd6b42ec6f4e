"""Compressed files read as if they were plain: gzip, bzip2 and xz from the standard library, zstd through
`zstandard` (the `data` extra). The format of ``corpus.jsonl.gz`` is the format of ``corpus.jsonl``."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from specc.runtime.errors import UserError
from specc.runtime.data.formats.optional import require

COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


def compression_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return suffix if suffix in COMPRESSED else None


def inner_suffix(path: Path) -> str:
    """The suffix that names the format: ``.jsonl`` for ``a.jsonl.gz``, ``.txt`` for ``a.txt``."""
    return Path(path.stem).suffix.lower() if compression_of(path) else path.suffix.lower()


def full_suffix(path: Path) -> str:
    """The suffix as a user writes it in a report: ``.jsonl.gz``, ``.md``, or the name itself when it has none."""
    kind = compression_of(path)
    return inner_suffix(path) + kind if kind else (path.suffix.lower() or "(no suffix)")


def open_binary(path: Path) -> IO[bytes]:
    """The file's decompressed bytes, streamed (a corpus larger than memory is never read whole)."""
    kind = compression_of(path)
    if kind == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads bytes like any IO[bytes]
    if kind == ".bz2":
        return bz2.open(path, "rb")
    if kind == ".xz":
        return lzma.open(path, "rb")
    if kind == ".zst":
        zstd = require("zstandard", path, "a .zst file")
        # the raw stream reads but does not iterate lines; a buffered reader over it does both
        return io.BufferedReader(zstd.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


@dataclass
class Stored:
    """A data file open for streaming: `stream` gives the decompressed bytes, `raw` is the file as stored,
    whose position says how far reading has got (progress bars and ETAs of large corpora)."""

    stream: io.BufferedIOBase
    raw: io.BufferedReader
    _closed_at: int = 0

    def position(self) -> int:
        """Bytes of the stored file read so far (all of them once it is closed)."""
        return self._closed_at if self.raw.closed else self.raw.tell()

    def close(self) -> None:
        self._closed_at = self.raw.tell()
        self.stream.close()
        self.raw.close()

    def __enter__(self) -> Stored:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stored(path: Path) -> Stored:
    """`open_binary`, keeping hold of the stored file beneath the decompressor."""
    kind = compression_of(path)
    zstd = require("zstandard", path, "a .zst file") if kind == ".zst" else None
    raw = open(path, "rb")
    if kind == ".gz":
        return Stored(gzip.GzipFile(fileobj=raw, mode="rb"), raw)
    if kind == ".bz2":
        return Stored(bz2.BZ2File(raw, mode="rb"), raw)
    if kind == ".xz":
        return Stored(lzma.LZMAFile(raw, mode="rb"), raw)
    if zstd is not None:
        return Stored(io.BufferedReader(zstd.ZstdDecompressor().stream_reader(raw)), raw)
    return Stored(raw, raw)


def open_text(path: Path) -> IO[str]:
    """The decompressed text (UTF-8, universal newlines kept as written: csv needs newline="")."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="")  # a leading BOM is no field's


def decompress_errors() -> tuple[type[BaseException], ...]:
    """What a truncated or corrupt compressed file raises while it is read."""
    return (EOFError, OSError, lzma.LZMAError, gzip.BadGzipFile)


@contextlib.contextmanager
def decoding(path: Path, not_utf8: Callable[[UnicodeDecodeError], str]) -> Iterator[None]:
    """Reading `path`: text that is not UTF-8 is a `UserError` worded by `not_utf8`, and a damaged compressed file
    one that says it cannot be decompressed (an OSError of an uncompressed file is not ours to reword)."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise UserError(not_utf8(err)) from None
    except decompress_errors() as err:
        if compression_of(path) is None:
            raise
        raise UserError(f"{path}: cannot decompress ({err})") from None
