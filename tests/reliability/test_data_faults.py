"""Data faults: a clear error naming the file (and line) before training starts, or skipped and counted.

For pretraining data (`[data]`, text and JSONL) and for fine-tuning data
(`[tasks.NAME.data]`, JSONL and CSV): a missing file, an empty file, bytes
that are not UTF-8, a line that is not JSON, a record without its field, a
label outside the declared set. Each ends `specc train` / `specc finetune`
with exit status 1, no traceback, the file:line in the message, no checkpoint
written and no temporary file left in the cache. With
``[data] on_bad_record = "skip"`` pretraining passes over bad records and
says how many.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from reltools import assert_clean_error, run_main
from runtools import GPT_TINY, SPECS, sets

Record = Callable[..., None]
SENTIMENT = str(SPECS / "bert-tiny-sentiment.toml")
LATIN1 = "caf\xe9".encode("latin-1")  # 'café' in Latin-1: not UTF-8
DEEP = b"[" * 100_000 + b"]" * 100_000


def _docs(n: int) -> list[str]:
    from specc.runtime.data.corpus import default_documents

    docs = []
    for doc in default_documents():
        docs.append(doc)
        if len(docs) == n:
            return docs
    return docs


# case → (file name, its bytes, [data] settings, expected fragment); {f} is the file's path
PRETRAINING: dict[str, tuple[str, bytes, list[str], str]] = {
    "missing file": ("absent.txt", b"", ["data.source=text"], "data file not found: {f}"),
    "empty file": ("empty.txt", b"", ["data.source=text"], "{f}: empty data file"),
    "empty JSONL file": ("empty.jsonl", b"\n\n", ["data.source=jsonl"], "{f}: empty data file"),
    "not UTF-8 (text)": ("latin1.txt", b"first line\nsecond\n" + LATIN1 + b"\n", ["data.source=text"], "{f}:3:4: not UTF-8 text"),
    "not UTF-8 (JSONL)": ("latin1.jsonl", b'{"text": "ok"}\n{"text": "' + LATIN1 + b'"}\n', ["data.source=jsonl"],
                          "{f}:2:14: not UTF-8 text"),
    "line not JSON": ("bad.jsonl", b'{"text": "ok"}\n{"text": broken\n', ["data.source=jsonl"], "{f}:2:10: invalid JSON"),
    "missing field": ("field.jsonl", b'{"text": "ok"}\n{"body": "no text"}\n', ["data.source=jsonl"],
                      "{f}:2: record has no text field 'text'"),
    "not an object": ("list.jsonl", b'["text"]\n', ["data.source=jsonl"], "{f}:1: record has no text field 'text'"),
    # hostile lines (issue 23, 8): tracebacks before (RecursionError, ValueError, UnicodeEncodeError later on)
    "a line nested 100,000 deep": ("deep.jsonl", b'{"text": "ok"}\n{"text": ' + DEEP + b"}\n", ["data.source=jsonl"],
                                   "{f}:2: invalid JSON: nested more than 64 deep"),
    "a 5,000-digit number": ("huge.jsonl", b'{"text": "ok", "n": ' + b"9" * 5000 + b"}\n", ["data.source=jsonl"],
                             "{f}:1: invalid JSON: an integer of 5000 digits (at most 40)"),
    "a lone surrogate": ("surrogate.jsonl", b'{"text": "ok \\ud800"}\n', ["data.source=jsonl"],
                         "{f}:1: invalid JSON: a string holds a lone UTF-16 surrogate"),
    "a line past max_line_bytes (JSONL)": ("long.jsonl", b'{"text": "ok"}\n{"text": "' + b"x" * 30_000 + b'"}\n{"text": "ok"}\n',
                                           ["data.source=jsonl", "data.max_line_bytes=10000"],
                                           "{f}:2: a line of more than 10,000 bytes ([data] max_line_bytes = 10000)"),
    "a line past max_line_bytes (text)": ("long.txt", b"first\n\n\n" + b"y" * 10_001, ["data.source=text", "data.max_line_bytes=10000"],
                                          "{f}:4: a line of more than 10,000 bytes"),
}


@pytest.mark.parametrize("case", sorted(PRETRAINING))
def test_pretraining_data_fault_is_named_before_training(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         specc_cache: Path, tally: Record, case: str) -> None:
    name, data, settings, expected = PRETRAINING[case]
    file = tmp_path / name
    if case != "missing file":
        file.write_bytes(data)
    out = tmp_path / "run"
    done = run_main(capsys, "train", GPT_TINY, "--out", str(out), "--quiet",
                    *sets(*settings, f'data.path="{file}"', "data.max_documents=1000"))
    assert_clean_error(done, expected.format(f=file))
    assert not (out / "checkpoints").exists()  # found before training started
    assert [p for p in specc_cache.rglob("*") if ".tmp" in p.name] == []
    _count(tally, case)


def test_bad_records_are_skipped_and_counted_when_declared(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                           tally: Record) -> None:
    good = [json.dumps({"text": doc}) for doc in _docs(12)]
    lines = good[:3] + ['{"text": broken'] + good[3:6] + ['{"body": "x"}'] + good[6:] + ["[1, 2]"]
    file = tmp_path / "docs.jsonl"
    file.write_bytes(("\n".join(lines) + "\n").encode() + LATIN1 + b"\n")
    out = tmp_path / "run"
    data = ["data.source=jsonl", f'data.path="{file}"', "train.steps=2", "train.save_every=2", "train.eval_every=2"]
    done = run_main(capsys, "train", GPT_TINY, "--out", str(out), "--quiet", *sets(*data, "data.on_bad_record=skip"))
    assert done.returncode == 0, done.stderr
    assert f"data: 4 bad records skipped (first: {file}:4:10: invalid JSON" in done.stdout, done.stdout
    assert f"{file}:8: record has no text field 'text'" in done.stdout
    assert (out / "checkpoints" / "step-00000002").is_dir()
    done = run_main(capsys, "train", GPT_TINY, "--out", str(tmp_path / "strict"), "--quiet", *sets(*data))  # the default
    assert_clean_error(done, f"{file}:4:10: invalid JSON", 'on_bad_record = "skip"')
    tally("data faults", skipped_when_declared=4)


# -- fine-tuning data -------------------------------------------------------------------------------------
GOOD = [{"text": "a fine film", "label": "positive"}, {"text": "a dull film", "label": "negative"}] * 3
TASK: dict[str, tuple[str, bytes, list[str], str]] = {
    "missing file": ("absent.jsonl", b"", [], "data file not found: {f}"),
    "empty file": ("empty.jsonl", b"", [], "{f}: the file holds no examples"),
    "not UTF-8": ("latin1.jsonl", b'{"text": "ok", "label": "positive"}\n{"text": "' + LATIN1 + b'", "label": "negative"}\n', [],
                  "{f}:2:14: not UTF-8 text"),
    "line not JSON": ("bad.jsonl", b'{"text": "ok", "label": "positive"}\n{"text": \n', [], "{f}:2:10: invalid JSON"),
    "missing field": ("field.jsonl", b'{"text": "ok", "label": "positive"}\n{"label": "negative"}\n', [],
                      "{f}:2: missing field 'text'"),
    "label outside the declared set": ("labels.jsonl", b'{"text": "ok", "label": "positive"}\n{"text": "meh", "label": "neutral"}\n',
                                       ['tasks.sentiment.labels=["negative", "positive"]'], "{f}:2: unknown label 'neutral'"),
    "ragged CSV row": ("rows.csv", b"text,label\nok,positive\nmeh\n", [], "{f}:3: 1 columns, but the header names 2"),
    "a line nested 100,000 deep": ("deep.jsonl", b'{"text": "ok", "label": "positive"}\n{"text": ' + DEEP + b"}\n", [],
                                   "{f}:2: invalid JSON: nested more than 64 deep"),
    "a 5,000-digit number": ("huge.jsonl", b'{"text": "ok", "label": "positive", "n": ' + b"9" * 5000 + b"}\n", [],
                             "{f}:1: invalid JSON: an integer of 5000 digits"),
    "a lone surrogate": ("surrogate.jsonl", b'{"text": "ok \\udc80", "label": "positive"}\n', [],
                         "{f}:1: invalid JSON: a string holds a lone UTF-16 surrogate"),
    "a CSV header naming a column twice": ("twice.csv", b"text,label,text\nok,positive,again\n", [],
                                           "{f}:1: the header row names a column twice"),
}


@pytest.mark.parametrize("case", sorted(TASK))
def test_task_data_fault_is_named_before_training(capsys: pytest.CaptureFixture[str], tmp_path: Path, tally: Record,
                                                  case: str) -> None:
    name, data, settings, expected = TASK[case]
    bad = tmp_path / name
    if case != "missing file":
        bad.write_bytes(data)
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    out = tmp_path / "run"
    task = ["params.layers=1", "params.d_model=32", "params.heads=2", 'tasks.sentiment.from=""', 'tasks.sentiment.data.demo=""',
            "tokenizer.vocab_size=512", "data.max_documents=24", "tasks.sentiment.train.steps=2"]
    for split in ("train", "validation"):  # the fault in either split is found before training
        files = {"train": good, "validation": good, split: bad}
        done = run_main(capsys, "finetune", SENTIMENT, "--out", str(out), "--quiet",
                        *sets(*task, *settings, *(f'tasks.sentiment.data.{k}="{v}"' for k, v in files.items()), base=[]))
        assert_clean_error(done, expected.format(f=bad))
        assert not (out / "checkpoints").exists()
    _count(tally, f"task: {case}")


def test_hostile_lines_are_skipped_and_counted_when_declared(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = [json.dumps({"text": doc}).encode() for doc in _docs(12)]
    hostile = [b'{"text": ' + DEEP + b"}", b'{"text": "x", "n": ' + b"9" * 5000 + b"}", b'{"text": "\\ud800"}',
               b'{"text": "' + b"z" * 300_000 + b'"}']
    file = tmp_path / "docs.jsonl"
    file.write_bytes(b"\n".join(good[:4] + hostile + good[4:]) + b"\n")
    done = run_main(capsys, "train", GPT_TINY, "--out", str(tmp_path / "run"), "--quiet",
                    *sets("data.source=jsonl", f'data.path="{file}"', "train.steps=2", "train.save_every=2",
                          "train.eval_every=2", "data.on_bad_record=skip", "data.max_line_bytes=250000"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"data: 4 bad records skipped (first: {file}:5: invalid JSON: nested more than 64 deep" in done.stdout, done.stdout


def test_a_byte_order_mark_is_no_part_of_a_field_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A CSV (and a JSONL file) saved with a BOM reads its first field name without it."""
    from specc.runtime.data.formats.peek import first_record
    from specc.runtime.data.formats.record import ReadOptions
    from specc.runtime.data.formats.tables import delimited, jsonl

    csv_file, jsonl_file = tmp_path / "bom.csv", tmp_path / "bom.jsonl"
    csv_file.write_bytes(b"\xef\xbb\xbftext,label\nok,positive\n")
    jsonl_file.write_bytes(b'\xef\xbb\xbf{"text": "ok", "label": "positive"}\n')
    opts = ReadOptions(needs=("text", "label"))
    assert list(delimited(csv_file, "csv", opts).records[0].fields) == ["text", "label"]
    assert list(jsonl(jsonl_file, opts).records[0].fields) == ["text", "label"]
    first = first_record(jsonl_file, "jsonl", opts)
    assert first is not None and list(first.fields) == ["text", "label"]


_CASES: set[str] = set()


def _count(tally: Record, case: str) -> None:
    _CASES.add(case)
    tally("data faults", cases=len(_CASES), clean_errors_before_training=len(_CASES))
