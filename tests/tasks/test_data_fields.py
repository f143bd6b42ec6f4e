"""`specc check` reads a task's data files' headers / first records and reports a named field they lack."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from helpers import SPECS
from specc.cli import main
from specc.raw import RawSpec, SpanTable
from specc.runtime.tasks import TASKS, DeclaredTask
from specc.runtime.tasks.fields import _task_files, record_fields


def check(spec: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(spec)])
    return code, err.getvalue()


def _spec(folder: Path, data: str) -> Path:
    """A copy of the shipped translation spec's task, reading files instead of the demo."""
    spec = folder / "mt.toml"
    spec.write_text('format = 1\nextends = "gpt-tiny-translate.toml"\n\n[tasks.translate.data]\ndemo = ""\n' + data)
    return spec


def test_a_field_the_header_lacks_is_reported_at_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text("source\ttarget\nHello\tHallo\n")
    code, err = check(_spec(tmp_path, 'train = "train.tsv"\n'))
    lines = err.splitlines()
    assert code == 1 and len([x for x in lines if "error[" in x]) == 2, err
    assert lines[0] == (f"{tmp_path}/mt.toml:6:9: error[E086]: {tmp_path}/train.tsv:1: the file has no field 'src' "
                        "(the task's data.source); its fields: source, target")
    assert '  = hint: set tasks.translate.data.source = "source"' in lines
    assert any("no field 'tgt' (the task's data.target)" in x for x in lines)
    # named as the file names them: the check passes
    assert check(_spec(tmp_path, 'train = "train.tsv"\nsource = "source"\ntarget = "target"\n')) == (0, "")


def test_only_the_first_record_is_read(tmp_path: Path) -> None:
    """What lies after the first record (here bytes that are neither JSON nor UTF-8) is left to `finetune`."""
    (tmp_path / "train.jsonl").write_bytes(json.dumps({"en": "Hi", "de": "Hallo"}).encode() + b"\n\xff\xfe{{not json\n")
    assert check(_spec(tmp_path, 'train = "train.jsonl"\nsource = "en"\ntarget = "de"\n')) == (0, "")
    code, err = check(_spec(tmp_path, 'train = "train.jsonl"\nsource = "en"\ntarget = "german"\n'))
    assert code == 1 and err.startswith(f"{tmp_path}/mt.toml:8:10: error[E086]: {tmp_path}/train.jsonl:1: the file has "
                                        "no field 'german' (the task's data.target); its fields: en, de"), err


def test_a_missing_or_unreadable_file_is_reported_at_its_key(tmp_path: Path) -> None:
    code, err = check(_spec(tmp_path, 'train = "nowhere.jsonl"\n'))
    assert code == 1 and err.startswith(f"{tmp_path}/mt.toml:6:9: error[E085]: data file not found: {tmp_path}/nowhere.jsonl")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    code, err = check(_spec(tmp_path, 'train = "bad.jsonl"\n'))
    assert code == 1 and f"error[E085]: {tmp_path}/bad.jsonl:1:2: invalid JSON" in err


@pytest.mark.parametrize("type_name", sorted(TASKS))
def test_every_field_key_of_every_task_type_is_checked(tmp_path: Path, type_name: str) -> None:
    """Generic over the registry: each key a task type marks as a field name is looked for in the file."""
    ttype = TASKS[type_name]
    params = ttype.params.model_validate({"type": type_name, "head": "h", "data": {"train": "t.jsonl"}})
    named = record_fields(params.data)
    assert named, f"{type_name} names no record field"
    (tmp_path / "t.jsonl").write_text(json.dumps({"unrelated": 1}) + "\n")
    found = _task_files(DeclaredTask("t", ttype, params), RawSpec({}, SpanTable(), "x.toml"), tmp_path)
    assert sorted(d.message.split("'")[1] for d in found) == sorted(params.data.reads())
    (tmp_path / "t.jsonl").write_text(json.dumps({name: "x" for name in named.values()}) + "\n")
    assert _task_files(DeclaredTask("t", ttype, params), RawSpec({}, SpanTable(), "x.toml"), tmp_path) == []


def test_the_shipped_demo_specs_read_no_file() -> None:
    assert check(SPECS / "bert-tiny-tasks.toml") == (0, "")


def test_compressed_files_declared_columns_and_parallel_pairs(tmp_path: Path) -> None:
    import gzip

    with gzip.open(tmp_path / "train.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"src": "Hi", "de": "Hallo"}) + "\n")
    code, err = check(_spec(tmp_path, 'train = "train.jsonl.gz"\n'))
    assert code == 1 and f"{tmp_path}/train.jsonl.gz:1: the file has no field 'tgt'" in err
    (tmp_path / "rows.tsv").write_text("Hello\tHallo\n")  # no header: the declared columns are the fields
    assert check(_spec(tmp_path, 'train = "rows.tsv"\ncolumns = ["src", "tgt"]\n')) == (0, "")
    code, err = check(_spec(tmp_path, 'train = "rows.tsv"\ncolumns = ["en", "tgt"]\n'))
    assert code == 1 and "rows.tsv (data.columns): the file has no field 'src'" in err
    (tmp_path / "train.en").write_text("Hello\n")
    code, err = check(_spec(tmp_path, 'train = { src_file = "train.en", tgt_file = "train.de" }\n'))
    assert code == 1 and [x for x in err.splitlines() if "error[" in x] == [
        f"{tmp_path}/mt.toml:6:9: error[E085]: data file not found: {tmp_path}/train.de"]
    (tmp_path / "train.de").write_text("Hallo\n")  # a pair of plain-text files: nothing to compare
    assert check(_spec(tmp_path, 'train = { src_file = "train.en", tgt_file = "train.de" }\n')) == (0, "")
