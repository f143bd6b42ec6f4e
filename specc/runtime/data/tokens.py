"""Token stores on disk: a prepared corpus as memory-mapped shards.

A prepared corpus is one folder::

    shard-00000/        train.bin, train.ends.npy, val.bin, val.ends.npy, shard.json
    shard-00001/        ...
    train.offsets.npy   document boundaries of the whole split (int64, written at the end)
    val.offsets.npy
    manifest.json       written last: the folder is complete exactly when it exists

`SPLIT.bin` holds a shard's token ids (uint16, or uint32 for vocabularies over 65,535) with
one end-of-sequence separator after each document; `SPLIT.ends.npy` where each of its
documents ends. A shard is written into a temporary folder, synced and renamed into place
(`specc.atomic`), so a shard folder that exists is whole; `specc.runtime.data.prepare` resumes
after the last one.
`TokenStore` reads a split through one `np.memmap` per shard: the corpus never sits in RAM.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator

from specc.atomic import atomic_dir, atomic_file, write_text
from specc.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np

    from specc.runtime.data.corpus import Skipped, Split
else:  # imported on first use: `specc check` and `specc ops` reach this module's names without reading tokens
    np = lazy_import("numpy")

SPLITS: tuple[Split, ...] = ("train", "val")
FORMAT = 2  # of the folder layout; part of the cache key
_SHARD = re.compile(r"shard-(\d{5})")


@dataclass
class ShardInfo:
    """What one shard holds, and where in the corpus stream it ends (for resuming)."""

    index: int
    docs: dict[str, int]  # per split
    tokens: dict[str, int]  # per split, separators included
    stream_docs: int  # documents of the corpus stream (both splits) this shard consumed
    position: int  # bytes into the stored corpus after its last document


@dataclass
class Manifest:
    dtype: str
    shards: int
    docs: dict[str, int]
    tokens: dict[str, int]
    stored_bytes: int
    skipped: int = 0
    skipped_first: list[str] = field(default_factory=list)
    format: int = FORMAT


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 65535 else np.uint32)


# -- writing ---------------------------------------------------------------------------------


class ShardWriter:
    """One shard, streamed into a temporary folder; `commit` makes it appear whole or not at all."""

    def __init__(self, folder: Path, index: int, dtype: np.dtype):
        self._staging = contextlib.ExitStack()
        self.tmp = self._staging.enter_context(atomic_dir(folder / f"shard-{index:05d}"))
        self.dtype = dtype
        self.info = ShardInfo(index, dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0), 0, 0)
        self._files: dict[str, BinaryIO] = {s: self._staging.enter_context(open(self.tmp / f"{s}.bin", "wb"))
                                            for s in SPLITS}
        self._ends: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}

    def add(self, split: Split, ids: np.ndarray, lengths: np.ndarray) -> None:
        """Documents of `split`: their ids back to back (separators included) and their lengths."""
        if not len(lengths):
            return
        ids.astype(self.dtype, copy=False).tofile(self._files[split])
        self._ends[split].append(self.info.tokens[split] + np.cumsum(lengths, dtype=np.int64))
        self.info.tokens[split] += int(lengths.sum())
        self.info.docs[split] += len(lengths)

    def commit(self, stream_docs: int, position: int) -> ShardInfo:
        """Close the shard, recording how far into the corpus stream it reaches; it is renamed into place
        (every file synced first) before this returns."""
        self.info.stream_docs, self.info.position = stream_docs, position
        for split, fh in self._files.items():
            fh.close()
            ends = np.concatenate(self._ends[split]) if self._ends[split] else np.zeros(0, np.int64)
            np.save(self.tmp / f"{split}.ends.npy", ends)
        (self.tmp / "shard.json").write_text(json.dumps(asdict(self.info)))
        self._staging.close()
        return self.info

    def abandon(self) -> None:
        """Drop the shard in progress (its temporary folder is removed)."""
        self._staging.__exit__(RuntimeError, RuntimeError("abandoned"), None)


def complete_shards(folder: Path) -> list[ShardInfo]:
    """The whole shards already in `folder`, in order (stopping at the first gap), after removing
    what a killed preparation left half-written."""
    for stale in folder.glob(".tmp-*"):  # specc.atomic's staging names
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    found: list[ShardInfo] = []
    for path in sorted(p for p in folder.iterdir() if _SHARD.fullmatch(p.name)):
        info = ShardInfo(**json.loads((path / "shard.json").read_text()))
        if info.index != len(found):  # a gap: later shards cannot be trusted to follow on
            break
        found.append(info)
    for path in folder.iterdir():  # shards past a gap are written again
        m = _SHARD.fullmatch(path.name)
        if m and int(m.group(1)) >= len(found):
            shutil.rmtree(path)
    return found


def finish(folder: Path, shards: list[ShardInfo], dtype: np.dtype, stored_bytes: int, skipped: Skipped) -> Manifest:
    """Each split's document offsets over all shards, then the manifest, last."""
    for split in SPLITS:
        parts, base = [np.zeros(1, np.int64)], 0
        for info in shards:
            if info.docs[split]:
                parts.append(base + np.load(folder / f"shard-{info.index:05d}" / f"{split}.ends.npy"))
            base += info.tokens[split]
        _save_synced(folder / f"{split}.offsets.npy", np.concatenate(parts))
    manifest = Manifest(dtype.name, len(shards), {s: sum(i.docs[s] for i in shards) for s in SPLITS},
                        {s: sum(i.tokens[s] for i in shards) for s in SPLITS}, stored_bytes, skipped.count, skipped.first)
    write_text(folder / "manifest.json", json.dumps(asdict(manifest)))
    return manifest


def store_from_arrays(folder: Path, ids: np.ndarray, lengths: np.ndarray, dtype: np.dtype) -> TokenStore:
    """A one-shard store whose train split holds `ids`: documents of `lengths` tokens, each ending in
    its separator (the val split empty). For benchmarks and tests that make up their tokens."""
    from specc.runtime.data.corpus import Skipped

    folder.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(folder, 0, dtype)
    writer.add("train", ids, lengths)
    finish(folder, [writer.commit(len(lengths), 0)], dtype, 0, Skipped())
    return TokenStore(folder, "train")


def _save_synced(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


# -- reading ---------------------------------------------------------------------------------


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / "manifest.json"
    return Manifest(**json.loads(path.read_text())) if path.exists() else None


class TokenStore:
    """A split's token ids (memory-mapped, shard by shard) and its document boundaries.

    `window(offsets[d], offsets[d + 1] - offsets[d])` are the tokens of document `d` followed by
    one end-of-sequence separator; windows may cross shard boundaries.
    """

    def __init__(self, folder: Path, split: Split):
        from specc.runtime.data.corpus import Skipped  # with the corpus's readers: `specc check` loads neither

        manifest = read_manifest(folder)
        if manifest is None:
            raise FileNotFoundError(f"{folder} is not a complete token store (no manifest.json)")
        self.folder, self.split = folder, split
        self.skipped = Skipped(manifest.skipped, list(manifest.skipped_first))  # of the whole corpus
        self.dtype = np.dtype(manifest.dtype)
        self.offsets = np.load(folder / f"{split}.offsets.npy", mmap_mode="r")
        self._files: list[Path] = []
        sizes: list[int] = []
        for i in range(manifest.shards):
            info = ShardInfo(**json.loads((folder / f"shard-{i:05d}" / "shard.json").read_text()))
            if info.tokens[split]:
                self._files.append(folder / f"shard-{i:05d}" / f"{split}.bin")
                sizes.append(info.tokens[split])
        self._maps: list[np.memmap | None] = [None] * len(self._files)  # opened on first use
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])  # first token of each shard

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def shards(self) -> int:
        return len(self._files)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def doc(self, d: int) -> np.ndarray:
        """Tokens of document `d`, without its separator."""
        lo, hi = int(self.offsets[d]), int(self.offsets[d + 1]) - 1
        return self.window(lo, hi - lo)

    def window(self, start: int, length: int) -> np.ndarray:
        """`length` consecutive ids of the packed stream (documents joined by separators), as int64;
        shorter at the end of the split."""
        pieces = []
        end = min(start + length, len(self))
        s = int(np.searchsorted(self.starts, start, side="right")) - 1
        while start < end:
            stop = min(end, int(self.starts[s + 1]))
            pieces.append(self._map(s)[start - self.starts[s] : stop - self.starts[s]])
            start, s = stop, s + 1
        return np.concatenate(pieces).astype(np.int64) if pieces else np.zeros(0, np.int64)

    def chunks(self, size: int = 1 << 22) -> Iterator[np.ndarray]:
        """The whole split in order, `size` ids at a time, read (not mapped) so that a pass over it
        leaves no pages of it counted in this process's memory."""
        for path in self._files:
            with open(path, "rb") as fh:
                while len(part := np.fromfile(fh, dtype=self.dtype, count=size)):
                    yield part

    def _map(self, s: int) -> np.memmap:
        m = self._maps[s]
        if m is None:
            m = self._maps[s] = np.memmap(self._files[s], dtype=self.dtype, mode="r")
        return m
