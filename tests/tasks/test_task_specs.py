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

from specc import load_spec
from specc.cli import main
from specc.graph import build_graph
from specc.runtime.config import load_run_config
from specc.runtime.objectives import resolve_objectives
from specc.runtime.tasks import resolve_tasks

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


def test_params_expressions_are_evaluated_in_every_runtime_section() -> None:
    """`[params]` expressions work the same in [train], [objective.*], a task table and the task's own train table."""
    sets = ['train.steps="2 * layers"', 'objective.mlm.mask_prob="0.05 * 3"', 'tasks.sentiment.max_len="layers * 16"',
            'tasks.sentiment.train.steps="3 * layers"', 'tasks.sentiment.train.warmup="layers"']
    spec = load_spec(ROOT / "specs/bert-tiny-sentiment.toml", sets)
    graph = build_graph(spec)
    assert spec.params["layers"] == 4
    assert load_run_config(spec).train.steps == 8
    assert resolve_objectives(spec, graph).entries[0][1].mask_prob == pytest.approx(0.15)
    task = resolve_tasks(spec, graph)["sentiment"]
    assert (task.params.max_len, task.params.train.steps, task.params.train.warmup) == (64, 12, 4)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    for case in CASES:
        (ROOT / CORPUS / case.replace(".toml", ".expected")).write_text(_check(*_argv(case))[1])
