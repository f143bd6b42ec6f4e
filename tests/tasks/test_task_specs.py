"""Task-table mistakes are diagnostics at `specc check` time: each file in tests/tasks/bad_tasks/ with its exact text.

`NN-name.toml` is checked with `specc check` from the repository root (plus the
arguments in `NN-name.args`); `NN-name.expected` holds what it prints to stderr.
Rewrite the expected files with ``python tests/tasks/test_task_specs.py --write``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

from specc.cli import main

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path("tests/tasks/bad_tasks")
CASES = sorted(p.name for p in (ROOT / CORPUS).glob("[0-9][0-9]-*.toml"))
SHIPPED = ["bert-tiny-sentiment.toml", "bert-tiny-tasks.toml", "bert-tiny-ner.toml", "bert-tiny-qa.toml",
           "t5-tiny-translate.toml", "gpt-tiny-translate.toml", "bert-base-sentiment.toml", "t5-small-translate.toml"]


def _check(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["check", *argv])
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


def _argv(name: str) -> list[str]:
    extra = ROOT / CORPUS / name.replace(".toml", ".args")
    return [str(CORPUS / name), *(extra.read_text().split() if extra.exists() else [])]


@pytest.mark.parametrize("name", CASES)
def test_bad_task_table(name: str) -> None:
    code, err = _check(*_argv(name))
    assert code == 1 and "Traceback" not in err
    assert err == (ROOT / CORPUS / name.replace(".toml", ".expected")).read_text()


@pytest.mark.parametrize("spec", SHIPPED)
def test_shipped_task_specs_check_clean(spec: str) -> None:
    assert _check(f"specs/{spec}") == (0, "")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    for case in CASES:
        (ROOT / CORPUS / case.replace(".toml", ".expected")).write_text(_check(*_argv(case))[1])
