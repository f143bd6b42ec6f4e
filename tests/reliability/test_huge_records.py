"""One huge record costs memory in proportion to what the model uses (issue 23, finding 8).

A 10 MB review in a classification task's JSONL cost 2.3 GB (the tokenizer encoded it whole, some
200 bytes a token, to keep 62 tokens), a 10 MB pretraining document 1.1 GB (encoded in one call).
Now a task encodes only a text's head (`TextTokenizer.encode_head`) and preparation encodes long
documents in pieces cut at spaces, a batch at a time; both give the ids the whole encoding gives.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtools import ROOT


@pytest.fixture(scope="module")
def docs() -> list[str]:
    from specc.runtime.data.corpus import default_documents

    return [d for d, _ in zip(default_documents(), range(200))]


@pytest.fixture(scope="module", params=["bpe", "wordpiece", "unigram"])
def tok(request: pytest.FixtureRequest, docs: list[str]):  # type: ignore[no-untyped-def]
    from specc.runtime.config import TokenizerConfig
    from specc.runtime.data.tokenizer import TextTokenizer, _train

    return TextTokenizer(_train(TokenizerConfig(kind=request.param, vocab_size=600), docs))


def _long(docs: list[str], seed: int, n: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(docs[rng.randrange(len(docs))] for _ in range(n))  # ~100 K characters, runs of spaces and newlines


def test_a_texts_head_encodes_as_the_whole_text_begins(tok, docs: list[str]) -> None:  # type: ignore[no-untyped-def]
    for seed in range(3):
        text = _long(docs, seed)
        whole = tok.encode(text)
        for limit in (1, 62, 126, 510, 4000):
            assert tok.encode_head(text, limit) == whole[:limit], (seed, limit)
    texts = [_long(docs, 7), "short one", ""]
    assert tok.encode_heads(texts, 126) == [tok.encode(t)[:126] for t in texts]


def test_long_documents_are_stored_as_their_whole_encoding(tok, docs: list[str]) -> None:  # type: ignore[no-untyped-def]
    from specc.runtime.data import prepare

    texts = [docs[0], _long(docs, 1, 200), "", docs[1], _long(docs, 2, 30)]  # the second spans several pieces
    flat, lengths = prepare._encode(tok, texts, eos=1)
    whole = [tok.encode(t) + [1] for t in texts]
    assert lengths.tolist() == [len(ids) for ids in whole]
    assert np.array_equal(flat, np.concatenate([np.array(ids) for ids in whole]))


# The child encodes one 10 MB document as a task and as preparation does, and prints its peak memory
# growth (VmHWM); the whole encoding (the old way) grows it by more than 1 GB.
CHILD = """
import sys
from specc.runtime.config import TokenizerConfig
from specc.runtime.data.corpus import default_documents
from specc.runtime.data.tokenizer import TextTokenizer, _train
from specc.runtime.data import prepare

def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) * 1024

docs = [d for d, _ in zip(default_documents(), range(100))]
tok = TextTokenizer(_train(TokenizerConfig(kind="bpe", vocab_size=600), docs))
text = (" ".join(docs) * 100)[:10_000_000]
base = hwm()
if sys.argv[1] == "whole":
    tok.encode(text)
else:
    assert len(tok.encode_head(text, 126)) == 126
    prepare._encode(tok, [text], 0)
print(hwm() - base)
"""


def _growth(how: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, how], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "2",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_10_mb_document_is_encoded_in_bounded_memory() -> None:
    assert _growth("bounded") < 300 << 20  # measured: 130 MiB (ids as int64, the pieces in flight)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_encoding_a_10_mb_document_whole_is_what_cost_the_memory() -> None:
    """The control: the bound above means something only if the whole encoding exceeds it."""
    assert _growth("whole") > 600 << 20


def test_a_task_line_past_the_limit_is_refused_at_its_line(tmp_path: Path) -> None:
    from specc.runtime.data.formats.record import ReadOptions
    from specc.runtime.data.formats.tables import bounded_lines, jsonl, text_lines
    from specc.runtime.errors import UserError

    file = tmp_path / "long.jsonl"
    file.write_text('{"text": "ok"}\n{"text": "' + "x" * 3000 + '"}\n')
    with open(file) as fh, pytest.raises(UserError, match=f"{file}:2: a line of more than 1,000 characters"):
        list(bounded_lines(fh, file, 1000))
    with open(file) as fh:
        assert [n for n, _ in bounded_lines(fh, file, 3012)] == [1, 2]  # 3,012 characters and the newline: fits
    assert len(jsonl(file, ReadOptions()).records) == 2 and len(text_lines(file, ReadOptions()).records) == 2
