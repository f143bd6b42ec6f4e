"""benchmarks/prep.py at toy size: the generated corpus and the measurements' shape (never a timing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` lives beside the packages, uninstalled

from benchmarks import prep  # noqa: E402

POOL = [f"Sentence {i} says something about topic {i % 7}." for i in range(300)]


def test_the_corpus_is_deterministic_varied_and_grows_from_its_start(tmp_path: Path) -> None:
    small = prep.generate(tmp_path / "small", 60_000, POOL)
    again = prep.generate(tmp_path / "again", 60_000, POOL)
    large = prep.generate(tmp_path / "large", 120_000, POOL)
    text = (small / "part-0000.jsonl").read_text()
    assert text == (again / "part-0000.jsonl").read_text()
    assert (large / "part-0000.jsonl").read_text().startswith(text)
    docs = [json.loads(line)["text"] for line in text.splitlines()]
    assert len(docs) > 20 and len(set(docs)) == len(docs)  # documents, not one line repeated
    assert all("\n\n" in d and d.split("\n\n")[1].split(". ")[0] + "." in POOL for d in docs)
    assert sum(len(line.encode()) + 1 for line in text.splitlines()) >= 60_000


def test_prepare_and_ceiling_report_what_the_table_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.runtime.config import TokenizerConfig
    from specc.runtime.data.tokenizer import build_tokenizer

    monkeypatch.setenv("SPECC_CACHE", str(tmp_path / "cache"))
    folder = prep.generate(tmp_path / "corpus", 80_000, POOL)
    tok_file = tmp_path / "tok.json"
    build_tokenizer(TokenizerConfig(vocab_size=300), POOL, "pool").save(tok_file)
    prepared = prep.child_prepare(folder, tok_file)
    ceiling = prep.child_ceiling(folder, tok_file, None)
    assert prepared["tokens"] - prepared["docs"] == ceiling["tokens"]  # the same text: separators aside, the same tokens
    assert prepared["stored_bytes"] == sum(f.stat().st_size for f in folder.glob("*.jsonl")) and prepared["peak_rss_mib"] > 0
    row = {"prepare": prepared, "ceiling": ceiling,
           "train": {"loaded_tokens_s": 1000.0, "in_memory_tokens_s": 1010.0, "ratio": 0.99}}
    results = {"sizes": {"80K": row}, "load_before": (1.0, 1.0, 1.0), "tokenizer": {"seconds": 1.0, "peak_rss_mib": 100.0}}
    table = prep.report(results)
    assert table.splitlines()[2].startswith(f"| 80K | {prepared['docs']:,} | {prepared['tokens']:,} | 1 |")
    assert table.splitlines()[2].endswith("| 1,000 | 1,010 | 0.990 |")


def test_a_training_only_row_keeps_its_columns() -> None:
    """`--phase train` on a quiet machine after `--phase prepare --keep-caches`: the training figures land in the
    training columns, with the spread of the per-round ratios."""
    train = {"loaded_tokens_s": 5000.0, "in_memory_tokens_s": 5050.0, "ratio": 0.995, "round_ratios": [0.98, 0.995, 1.01],
             "batch_ms_median": 0.35, "batch_share": 0.0016}
    results = {"sizes": {"1G": {"train": train}}, "load_before": (1.0, 1.0, 1.0)}
    lines = prep.report(results).splitlines()
    assert lines[2] == "| 1G | " + " | " * 9 + "5,000 | 5,050 | 0.995 (0.980–1.010) |"
    assert "- 1G: building a batch from the shards took 0.35 ms (median), 0.16 % of a step" in lines
