"""Streaming data preparation (specc.runtime.data.prepare) at toy size: shard boundaries lose or repeat no
token, an interrupted preparation resumes after its last whole shard, compressed inputs read as plain
ones, and the tokenizer trains on the declared sample."""

from __future__ import annotations

import gzip
import importlib.util
import lzma
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specc.runtime.config import DataConfig, TokenizerConfig
from specc.runtime.data.corpus import Corpus, default_documents
from specc.runtime.errors import UserError
from specc.runtime.data.prepare import prepare, store_folder
from specc.runtime.data.tokenizer import TextTokenizer, build_tokenizer
from specc.runtime.data.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[2]
SHARD = 20_000  # bytes of input per shard: a dozen shards of the toy corpus


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return [d for d, _ in zip(default_documents(), range(120))]


@pytest.fixture(scope="module")
def tok(docs: list[str], tmp_path_factory: pytest.TempPathFactory) -> TextTokenizer:
    with pytest.MonkeyPatch.context() as mp:  # a module fixture runs outside each test's own cache
        mp.setenv("SPECC_CACHE", str(tmp_path_factory.mktemp("tok")))
        return build_tokenizer(TokenizerConfig(vocab_size=400), docs, "toy")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPECC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def write_text_corpus(folder: Path, docs: list[str], files: int = 4) -> Path:
    """`docs` over `files` text files, documents separated by two blank lines."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        (folder / f"part{k}.txt").write_text("\n\n\n".join(docs[k::files]) + "\n")
    return folder


def corpus_of(folder: Path, **data: object) -> Corpus:
    return Corpus(DataConfig(source="text", path=str(folder), shard_bytes=SHARD, **data), folder)  # type: ignore[arg-type]


def one_shot(corpus: Corpus, tok: TextTokenizer, split: str) -> np.ndarray:
    """The split's token stream encoded in one go: every document, then its separator."""
    ids = [i for d in corpus.documents(split) for i in tok.encode(d) + [tok.specials.eos]]
    return np.asarray(ids, dtype=np.int64)


def test_shards_hold_every_token_once(tmp_path: Path, docs: list[str], tok: TextTokenizer) -> None:
    corpus = corpus_of(write_text_corpus(tmp_path / "corpus", docs))
    prepared = prepare(corpus, tok, quiet=True)
    assert prepared.train.shards >= 5  # the test is about boundaries: there must be several
    for split in ("train", "val"):
        store: TokenStore = getattr(prepared, split)
        expected = one_shot(corpus, tok, split)
        assert len(store) == len(expected)  # counted: no token lost or duplicated across shards
        assert np.array_equal(store.window(0, len(store)), expected)
        assert np.array_equal(np.concatenate(list(store.chunks(size=777))), expected)
        assert store.n_docs == sum(1 for _ in corpus.documents(split))
    store = prepared.train
    for boundary in store.starts[1:-1]:  # windows across each shard boundary read straight through
        b = int(boundary)
        assert np.array_equal(store.window(b - 5, 10), one_shot(corpus, tok, "train")[b - 5 : b + 5])
    first = next(corpus.documents("train"))
    assert np.array_equal(store.doc(0), tok.encode(first))
    assert prepared.report is not None and prepared.report.manifest.tokens["train"] == len(store)


def test_a_second_preparation_reads_the_cache(tmp_path: Path, docs: list[str], tok: TextTokenizer) -> None:
    corpus = corpus_of(write_text_corpus(tmp_path / "corpus", docs))
    assert prepare(corpus, tok, quiet=True).report is not None
    again = prepare(corpus, tok, quiet=True)
    assert again.report is None and len(again.train) == len(one_shot(corpus, tok, "train"))


KILL_AFTER_SHARDS = """
import os, signal, sys
from pathlib import Path
from specc.runtime.config import DataConfig
from specc.runtime.data.corpus import Corpus
from specc.runtime.data.prepare import prepare
from specc.runtime.data.tokenizer import TextTokenizer

folder, tok_file, kill_after = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
corpus = Corpus(DataConfig(source="text", path=str(folder), shard_bytes={shard}), folder)

def on_shard(info):
    if info.index + 1 == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)  # as a power cut or the OOM killer would: no clean-up at all

prepare(corpus, TextTokenizer.load(tok_file), quiet=True, on_shard=on_shard)
"""


class Counting(TextTokenizer):
    """A tokenizer that counts the documents it is asked to encode."""

    def __init__(self, tok: TextTokenizer):
        super().__init__(tok.tok)
        self.encoded = 0
        inner = self.tok

        class Wrapped:
            def __getattr__(self, name: str) -> object:
                return getattr(inner, name)

            def encode_batch_fast(wrapped, texts: list[str], **kw: object) -> object:  # noqa: N805
                self.encoded += len(texts)
                return inner.encode_batch_fast(texts, **kw)

        self.tok = Wrapped()  # type: ignore[assignment]


def test_a_killed_preparation_resumes_after_its_last_whole_shard(tmp_path: Path, docs: list[str], tok: TextTokenizer,
                                                                 own_cache: Path) -> None:
    folder = write_text_corpus(tmp_path / "corpus", docs)
    corpus = corpus_of(folder)
    tok_file = tmp_path / "tok.json"
    tok.save(tok_file)
    script = KILL_AFTER_SHARDS.format(shard=SHARD)
    env = {**os.environ, "SPECC_CACHE": str(own_cache), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(folder), str(tok_file), "3"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    store = store_folder(corpus, tok)
    assert sorted(p.name for p in store.glob("shard-?????")) == ["shard-00000", "shard-00001", "shard-00002"]
    assert not (store / "manifest.json").exists()  # not a store yet: nothing may read it
    half = store / ".tmp-shard-00003-999999"  # what a kill in the middle of a shard leaves (specc.atomic's name)
    half.mkdir()
    (half / "train.bin").write_bytes(b"\x01\x02half")

    counting = Counting(TextTokenizer.load(tok_file))
    prepared = prepare(corpus, counting, quiet=True)
    report = prepared.report
    assert report is not None and report.resumed_shards == 3
    total_docs = sum(1 for _ in corpus.stream())
    assert counting.encoded == total_docs - report.resumed_docs  # only what the killed run had not committed
    assert 0 < report.resumed_docs < total_docs
    for split in ("train", "val"):
        assert np.array_equal(getattr(prepared, split).window(0, 10**9), one_shot(corpus, tok, split))
    assert not list(store.glob("*tmp*"))
    assert "resumed after 3 whole shards" in "\n".join(report.lines())


def test_compressed_files_read_as_plain_ones(tmp_path: Path, docs: list[str], tok: TextTokenizer) -> None:
    import json

    plain = corpus_of(write_text_corpus(tmp_path / "plain", docs, files=2))
    packed = tmp_path / "packed"
    packed.mkdir()
    text = sorted((tmp_path / "plain").iterdir())
    (packed / "a.txt.gz").write_bytes(gzip.compress(text[0].read_bytes()))
    (packed / "b.txt.xz").write_bytes(lzma.compress(text[1].read_bytes()))
    (packed / "notes.csv").write_text("not,part,of a text corpus")
    squeezed = corpus_of(packed)
    assert list(squeezed.documents("train")) == list(plain.documents("train"))
    assert np.array_equal(prepare(squeezed, tok, quiet=True).train.window(0, 10**9), one_shot(plain, tok, "train"))

    lines = "".join(json.dumps({"text": d}) + "\n" for d in docs[:30])
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "c.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    jsonl = Corpus(DataConfig(source="jsonl", path=str(tmp_path / "j")), tmp_path)
    assert [d.text for d in jsonl.stream()] == docs[:30]


def test_a_damaged_compressed_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.txt.gz"
    whole = gzip.compress("".join(f"line {i}\n" for i in range(5000)).encode())
    bad.write_bytes(whole[: len(whole) // 2])  # cut short, as an interrupted download is
    with pytest.raises(UserError, match=r"broken\.txt\.gz: cannot decompress"):
        list(corpus_of(bad).documents("train"))


@pytest.mark.skipif(importlib.util.find_spec("zstandard") is not None, reason="zstandard is installed")
def test_zstd_without_its_package_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "c.txt.zst").write_bytes(b"\x28\xb5\x2f\xfd")
    with pytest.raises(UserError, match=r"c\.txt\.zst: a \.zst file needs the 'zstandard' library.*pip install 'specc\[data\]'"):
        list(corpus_of(tmp_path / "c.txt.zst").documents("train"))


@pytest.mark.skipif(importlib.util.find_spec("zstandard") is None, reason="needs the data extra")
def test_zstd_files_read_as_plain_ones(tmp_path: Path, docs: list[str]) -> None:
    import zstandard

    plain = write_text_corpus(tmp_path / "plain", docs, files=1) / "part0.txt"
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "c.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    assert list(corpus_of(tmp_path / "z").documents("train")) == list(corpus_of(plain).documents("train"))


def test_skipped_records_are_counted_in_the_summary(tmp_path: Path, docs: list[str], tok: TextTokenizer) -> None:
    import json

    good = [json.dumps({"text": d}) for d in docs[:40]]
    (tmp_path / "c.jsonl").write_text("\n".join(good[:20] + ["{broken", '{"body": 1}'] + good[20:]) + "\n")
    corpus = Corpus(DataConfig(source="jsonl", path=str(tmp_path / "c.jsonl"), on_bad_record="skip"), tmp_path)
    report = prepare(corpus, tok, quiet=True).report
    assert report is not None
    assert report.manifest.skipped == 2 and report.manifest.docs["train"] + report.manifest.docs["val"] == 40
    assert "2 bad records skipped" in report.lines()[0]


def test_the_tokenizer_trains_on_the_declared_sample(docs: list[str]) -> None:
    sampled = build_tokenizer(TokenizerConfig(vocab_size=300, sample_docs=10), docs, "all of them")
    first = build_tokenizer(TokenizerConfig(vocab_size=300), docs[:10], "the first ten")
    assert sampled.tok.get_vocab() == first.tok.get_vocab()
    size = sum(len(d.encode()) for d in docs[:7])
    by_bytes = build_tokenizer(TokenizerConfig(vocab_size=300, sample_bytes=size), docs, "all, by bytes")
    assert by_bytes.tok.get_vocab() == build_tokenizer(TokenizerConfig(vocab_size=300), docs[:7], "first 7").tok.get_vocab()
