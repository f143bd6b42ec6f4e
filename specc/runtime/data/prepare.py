"""Data preparation: a corpus streamed once into sharded, memory-mapped token stores.

One reader thread walks the corpus (decompressing, splitting documents, assigning each to
train or val) and hands batches of about 1 MB of text to the encoder, which runs Hugging Face
`tokenizers`' batch encoding on every core (it releases the GIL, so reading goes on meanwhile).
Encoded documents stream into the current shard's files; every `[data] shard_bytes` of input a
shard is committed whole (`specc.runtime.data.tokens`). Memory stays flat: at most a few batches in
flight, whatever the corpus size. A killed preparation restarts after its last whole shard
(re-reading, not re-encoding, what came before); the finished store is cached by corpus and
tokenizer and shared by every later run.
"""

from __future__ import annotations

import fcntl
import hashlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from specc.runtime.data.corpus import Corpus, Doc, Skipped, Split
from specc.runtime.errors import UserError
from specc.runtime.data.tokenizer import TextTokenizer, cache_dir, head_cut
from specc.runtime.data.tokens import FORMAT, SPLITS, Manifest, ShardInfo, ShardWriter, TokenStore, complete_shards, finish, \
    read_manifest, token_dtype

BATCH_CHARS = 1 << 20  # text per encode_batch call: enough for every core, small enough to keep memory flat


@dataclass
class Prepared:
    """The stores of both splits, and what preparing them did (None when they came from the cache)."""

    train: TokenStore
    val: TokenStore
    report: Report | None


@dataclass
class Report:
    """What one preparation read and wrote (documents and tokens of this run, resumed shards aside)."""

    manifest: Manifest
    resumed_shards: int
    resumed_docs: int
    docs: int
    tokens: int
    stored_bytes: int  # of input read and encoded by this run
    seconds: float

    def lines(self) -> list[str]:
        """The summary `specc train` prints (bad records are listed by the job, cached or not)."""
        m = self.manifest
        rate = f"{self.stored_bytes / 1e6 / max(self.seconds, 1e-9):.1f} MB/s, {self.tokens / max(self.seconds, 1e-9):,.0f} tokens/s"
        skipped = f"{m.skipped} bad record{'s' * (m.skipped != 1)} skipped" if m.skipped else "no bad records"
        out = [f"prepared {m.docs['train'] + m.docs['val']:,} documents ({m.docs['train']:,} train / {m.docs['val']:,} val), "
               f"{m.tokens['train'] + m.tokens['val']:,} tokens in {m.shards} shard{'s' * (m.shards != 1)}, {skipped}; "
               f"encoded {self.stored_bytes / 1e6:.1f} MB in {self.seconds:.1f} s ({rate})"]
        if self.resumed_shards:
            out.append(f"resumed after {self.resumed_shards} whole shard{'s' * (self.resumed_shards != 1)} "
                       f"({self.resumed_docs:,} documents) left by an interrupted preparation")
        return out


def store_folder(corpus: Corpus, tok: TextTokenizer) -> Path:
    key = hashlib.sha256(f"{corpus.fingerprint()}:{tok.fingerprint()}:v{FORMAT}".encode()).hexdigest()[:20]
    return cache_dir() / "tokens" / key


def token_store(corpus: Corpus, split: Split, tok: TextTokenizer) -> TokenStore:
    """The cached store of `split`, preparing both splits (quietly) if missing."""
    return getattr(prepare(corpus, tok, quiet=True), split)  # type: ignore[no-any-return]


def prepare(corpus: Corpus, tok: TextTokenizer, quiet: bool = False,
            on_shard: Callable[[ShardInfo], None] | None = None) -> Prepared:
    """Both splits of `corpus` tokenised with `tok`: from the cache, or prepared now (resuming an
    interrupted preparation). `on_shard` is called after each shard is committed."""
    folder = store_folder(corpus, tok)
    report = None
    if read_manifest(folder) is None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:  # one preparer per store; others wait, then read it
            fcntl.flock(lock, fcntl.LOCK_EX)
            if read_manifest(folder) is None:
                report = _prepare(corpus, tok, folder, quiet, on_shard)
    stores = Prepared(TokenStore(folder, "train"), TokenStore(folder, "val"), report)
    for split in SPLITS:
        store = getattr(stores, split)
        if store.n_docs == 0 or len(store) == 0:
            raise UserError(f"the {split} split of the corpus is empty")
    return stores


def _prepare(corpus: Corpus, tok: TextTokenizer, folder: Path, quiet: bool,
             on_shard: Callable[[ShardInfo], None] | None) -> Report:
    shards = complete_shards(folder)
    resumed = len(shards)
    skip = shards[-1].stream_docs if shards else 0
    start_position = shards[-1].position if shards else 0
    dtype, eos = token_dtype(tok.vocab_size), tok.specials.eos
    shard_bytes = corpus.cfg.shard_bytes
    skipped = Skipped()
    total = corpus.stored_bytes()
    bar = tqdm(total=total, initial=start_position, unit="B", unit_scale=True, desc="prepare", disable=quiet,
               dynamic_ncols=True, smoothing=0.1)
    t0, tokens, docs, position, stream_docs = time.perf_counter(), 0, 0, start_position, skip
    writer: ShardWriter | None = None
    try:
        for batch in _batches(corpus.stream(skipped), skip, min(BATCH_CHARS, max(1, shard_bytes // 4))):
            if writer is None:
                writer = ShardWriter(folder, len(shards), dtype)
                shard_start = position
            ids, lengths = _encode(tok, batch.texts, eos)
            in_val = np.repeat(batch.val, lengths)  # per token
            writer.add("train", ids[~in_val], lengths[~batch.val])
            writer.add("val", ids[in_val], lengths[batch.val])
            tokens, docs, stream_docs = tokens + len(ids), docs + len(lengths), stream_docs + len(lengths)
            bar.update(batch.position - position)
            bar.set_postfix(tokens_s=f"{tokens / (time.perf_counter() - t0):,.0f}", docs=f"{stream_docs:,}", refresh=False)
            position = batch.position
            if position - shard_start >= shard_bytes:
                shards.append(writer.commit(stream_docs, position))
                writer = None
                if on_shard is not None:
                    on_shard(shards[-1])
        if writer is not None:
            shards.append(writer.commit(stream_docs, position))
            writer = None
            if on_shard is not None:
                on_shard(shards[-1])
    finally:
        if writer is not None:  # interrupted mid-shard: the whole shards stay for the next try
            writer.abandon()
        bar.close()
    manifest = finish(folder, shards, dtype, total, skipped)
    return Report(manifest, resumed, skip, docs, tokens, position - start_position, time.perf_counter() - t0)


def _encode(tok: TextTokenizer, texts: list[str], eos: int) -> tuple[np.ndarray, np.ndarray]:
    """All documents' ids back to back, each followed by `eos`, and each document's length.

    A long document is encoded in pieces cut at spaces (`head_cut`: the ids are the whole document's), and
    at most `BATCH_CHARS` of pieces per call: the tokenizer's working memory (some 100 bytes a token) stays
    that of one batch, where a 10 MB document encoded whole took 1 GB."""
    parts: list[np.ndarray] = []
    lengths = np.zeros(len(texts), np.int64)
    end = np.array([eos], np.int64)
    for group in _groups(texts):
        encoded = tok.tok.encode_batch_fast([piece for _, piece, _ in group], add_special_tokens=False)  # every core
        for (doc, _, last), e in zip(group, encoded):
            ids = np.asarray(e.ids, np.int64)
            parts.append(ids)
            lengths[doc] += len(ids)
            if last:
                parts.append(end)
                lengths[doc] += 1
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), lengths


PIECE_CHARS = 1 << 16  # a longer document is encoded in pieces of about this many characters


def _groups(texts: list[str]) -> Iterator[list[tuple[int, str, bool]]]:
    """(document, piece, whether it is the document's last) in calls of about `BATCH_CHARS` characters."""
    group: list[tuple[int, str, bool]] = []
    chars = 0
    for doc, text in enumerate(texts):
        start = 0
        while True:
            cut = head_cut(text, start + PIECE_CHARS, start)[0] if len(text) - start > PIECE_CHARS else len(text)
            group.append((doc, text[start:cut], cut == len(text)))
            chars += cut - start
            start = cut
            if chars >= BATCH_CHARS:
                yield group
                group, chars = [], 0
            if start == len(text):
                break
    if group:
        yield group


@dataclass
class _Batch:
    texts: list[str]
    val: np.ndarray  # bool per document
    position: int  # bytes into the stored corpus after its last document


_END = object()


def _batches(docs: Iterator[Doc], skip: int, batch_chars: int) -> Iterator[_Batch]:
    """Batches of about `batch_chars` of text from a reader thread (after the first `skip` documents,
    which an earlier preparation already encoded), a few at most in flight."""
    out: queue.Queue[object] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            texts: list[str] = []
            flags: list[bool] = []
            chars = 0
            for i, doc in enumerate(docs):
                if i < skip:
                    continue
                texts.append(doc.text)
                flags.append(doc.val)
                chars += len(doc.text)
                if chars >= batch_chars:
                    if not put(_Batch(texts, np.array(flags), doc.position)):
                        return
                    texts, flags, chars = [], [], 0
            if texts:
                put(_Batch(texts, np.array(flags), doc.position))
            put(_END)
        except BaseException as err:  # handed to the consumer, which raises it where it reads
            put(err)

    reader = threading.Thread(target=read, name="specc-prepare-reader", daemon=True)
    reader.start()
    try:
        while (item := out.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, _Batch)
            yield item
    finally:
        stop.set()
        reader.join()
