"""Full disks and unwritable folders outside checkpoints (issue 23, finding 10): one clear line naming the file,
nothing half-written, the previous checkpoint intact.

Before: the cache folder (tokenizers, token stores), `export-hf` (which left an empty folder behind), `import-hf -o`
(which left a spec naming a checkpoint never written, and a `.tmp-` folder) and `train --resume` in a read-only run
folder ended in tracebacks. A full disk is injected where the write happens (ENOSPC), an unwritable place is a path
through a file (the tests run as any user, root included, for whom permissions do not bind).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import pytest

from reltools import assert_clean_error, run_main
from runtools import GPT_TINY, sets

SETS = sets("train.steps=2", "train.save_every=2", "train.eval_every=2")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from specc.cli import main
    from specc.runtime.train.jobs import train

    tmp = tmp_path_factory.mktemp("full-disk")
    train(GPT_TINY, str(tmp / "gpt"), None, SETS[1::2], quiet=True, say=lambda _: None)
    assert main(["export-hf", str(tmp / "gpt"), "-o", str(tmp / "hf")]) == 0
    return {"gpt": tmp / "gpt", "hf": tmp / "hf"}


def _full(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".tmp"))


def test_a_cache_folder_that_cannot_be_made_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SPECC_CACHE", str(tmp_path / "file" / "cache"))
    done = run_main(capsys, "train", GPT_TINY, "--out", str(tmp_path / "run"), "--quiet", *SETS)
    assert_clean_error(done, f"error: {tmp_path / 'file' / 'cache'}", "Not a directory")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_full_disk_while_writing_the_token_store_leaves_no_partial_store(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setenv("SPECC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(np, "save", _full)  # the store's offsets, written after its ids
    done = run_main(capsys, "train", GPT_TINY, "--out", str(tmp_path / "run"), "--quiet", *SETS)
    assert_clean_error(done, "No space left on device")
    assert _leftovers(tmp_path / "cache") == []
    assert not [p for p in (tmp_path / "cache").rglob("meta.json")]  # no store claims to be complete


def test_export_hf_on_a_full_disk_writes_nothing(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.hf import exporter

    monkeypatch.setattr(exporter, "write_weights", _full)
    out = tmp_path / "exported"
    assert_clean_error(run_main(capsys, "export-hf", str(runs["gpt"]), "-o", str(out)), "No space left on device")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_export_hf_on_a_full_disk_keeps_the_previous_export(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.hf import exporter

    out = tmp_path / "exported"
    shutil.copytree(runs["hf"], out)
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setattr(exporter, "write_weights", _full)
    assert_clean_error(run_main(capsys, "export-hf", str(runs["gpt"]), "-o", str(out), "--force"), "No space left")
    assert sorted(p.name for p in out.iterdir()) == before and _leftovers(tmp_path) == []


def test_export_hf_through_a_file_is_one_line(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                              tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = run_main(capsys, "export-hf", str(runs["gpt"]), "-o", str(tmp_path / "file" / "hf"))
    assert_clean_error(done, f"error: {tmp_path / 'file'}")


def test_import_hf_on_a_full_disk_writes_neither_spec_nor_checkpoint(
        capsys: pytest.CaptureFixture[str], runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.runtime.runs import interop

    monkeypatch.setattr(interop, "save_model", _full)
    out = tmp_path / "out"
    done = run_main(capsys, "import-hf", str(runs["hf"]), "-o", str(out / "imported.toml"))
    assert_clean_error(done, "No space left on device")
    assert not (out / "imported.toml").exists() and not (out / "imported").exists()
    assert _leftovers(tmp_path) == []


def test_import_hf_through_a_file_is_one_line(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                              tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = run_main(capsys, "import-hf", str(runs["hf"]), "-o", str(tmp_path / "file" / "imported.toml"))
    assert_clean_error(done, f"error: {tmp_path / 'file'}")


def test_resume_in_a_read_only_run_folder_is_a_clear_error(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.runtime.runs import runlog

    def read_only(path: Any, *_: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    run = tmp_path / "gpt"
    shutil.copytree(runs["gpt"], run)
    monkeypatch.setattr(runlog, "write_bytes", read_only)  # the first write a resume makes: the metrics log, repaired
    done = run_main(capsys, "train", GPT_TINY, "--resume", str(run), "--quiet", *sets("train.steps=4"))
    assert_clean_error(done, f"cannot write {run / 'metrics.jsonl'}: Read-only file system; "
                             "the last complete checkpoint, step-00000002, is intact")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002"]
