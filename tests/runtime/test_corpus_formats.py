"""Pretraining corpora in every layout a user holds: text, JSONL, Parquet, datasets folders, compressed
files, folders with include globs; and `specc train` saying what it read and every file it passed over."""

from __future__ import annotations

import gzip
import json
import lzma
import subprocess
from pathlib import Path

import pytest

from runtools import GPT_TINY, sets
from specc.cli import main as specc_main
from specc.runtime.config import DataConfig
from specc.runtime.data.corpus import Corpus
from specc.runtime.errors import UserError

DOCS = [f"Document {k} says the quick brown fox jumps over the lazy dog number {k}." for k in range(6)]


def _corpus(folder: Path, **cfg: object) -> Corpus:
    return Corpus(DataConfig.model_validate({"path": str(folder), **cfg}), folder)


def _all(corpus: Corpus) -> list[str]:
    return sorted([*corpus.documents("train"), *corpus.documents("val")])


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(DOCS[0])
    (folder / "sub" / "b.md").write_text(DOCS[1])
    with gzip.open(folder / "c.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write(DOCS[2])
    with lzma.open(folder / "d.jsonl.xz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": DOCS[3]}) + "\n" + json.dumps({"meta": {"body": DOCS[4]}, "text": DOCS[4]}) + "\n")
    (folder / "notes.py").write_text("print('not prose')\n")
    (folder / ".hidden.txt").write_text("a dotfile\n")
    return folder


def test_a_text_folder_reads_md_and_compressed_text_and_says_what_it_skipped(tmp_path: Path) -> None:
    corpus = _corpus(_folder(tmp_path), source="text")
    assert _all(corpus) == sorted(DOCS[:3])
    lines = corpus.listing().lines()
    assert lines[0] == "read 3 files (.md ×1, .txt ×1, .txt.gz ×1)"
    assert any(line.startswith("skipped 2 files (.jsonl.xz ×1, .py ×1): not a suffix this source reads") for line in lines)
    assert "skipped 1 file (.txt ×1): hidden (a name starting with '.')" in lines


def test_auto_reads_each_file_by_its_suffix_and_include_lists_exactly_what_to_read(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert _all(_corpus(folder, source="auto")) == sorted(DOCS[:5])
    only = _corpus(folder, source="auto", include=["*.jsonl.xz", "**/*.md"])
    assert _all(only) == sorted([DOCS[1], DOCS[3], DOCS[4]])
    lines = only.listing().lines()
    assert lines[0] == "read 2 files (.jsonl.xz ×1, .md ×1)"
    assert "skipped 3 files (.py ×1, .txt ×1, .txt.gz ×1): not matched by [data] include = ['*.jsonl.xz', '**/*.md']" in lines
    nested = _corpus(folder, source="jsonl", include=["*.jsonl.xz"], text_field="meta.body", on_bad_record="skip")
    assert _all(nested) == [DOCS[4]]  # the first line has no meta.body: a bad record, counted


def test_parquet_and_a_datasets_folder_are_corpora(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": DOCS, "id": list(range(len(DOCS)))})
    ds.to_parquet(str(tmp_path / "docs.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    assert _all(_corpus(tmp_path / "docs.parquet", source="parquet")) == sorted(DOCS)
    assert _all(_corpus(tmp_path / "saved", source="datasets")) == sorted(DOCS)
    with pytest.raises(UserError, match="row 0: row has no text field 'body'"):
        _all(_corpus(tmp_path / "saved", source="datasets", text_field="body"))


def test_specc_train_prints_what_it_read_and_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    for k in range(40):  # enough text for a tokenizer and a few windows
        (folder / f"more{k}.txt").write_text(" ".join(DOCS) + f" Extra words {k}.")
    args = sets(f'data.path="{folder}"', "data.source=text", "train.steps=2", "train.save_every=2", "train.eval_every=2")
    status = specc_main(["train", GPT_TINY, "--out", str(tmp_path / "run"), "--quiet", *args])
    out, err = capsys.readouterr()
    done = subprocess.CompletedProcess([], status, out, err)
    assert done.returncode == 0, done.stderr
    assert "data: read 43 files (.txt ×41, .md ×1, .txt.gz ×1)" in done.stdout
    assert "data: skipped 2 files (.jsonl.xz ×1, .py ×1): not a suffix this source reads" in done.stdout
