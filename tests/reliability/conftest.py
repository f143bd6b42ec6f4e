"""Fixtures of the reliability suite: the tally of what was tried, the throwaway cache for the whole session.

Each test that injects faults or tries inputs adds a line to the session's
tally (`tally`); the lines are printed at the end of the run and, with
``SPECC_RELIABILITY_REPORT=file.json``, written as JSON, so a CI log says how
many inputs were fuzzed and how many faults were injected, with what outcome.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))  # runtools: the runtime tests' helpers and tiny-run settings

Tally = Callable[..., None]


FIGURES = pytest.StashKey[dict[str, dict[str, Any]]]()


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Tally:
    """`tally(name, **figures)`: record what a test tried and what came of it."""
    lines = request.config.stash.setdefault(FIGURES, {})

    def record(name: str, **figures: Any) -> None:
        lines.setdefault(name, {}).update(figures)

    return record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, {})
    if not lines:
        return
    terminalreporter.write_sep("-", "reliability figures")
    for name, figures in lines.items():
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    target = os.environ.get("SPECC_RELIABILITY_REPORT")
    if target:
        Path(target).write_text(json.dumps(lines, indent=1, default=str))


@pytest.fixture(scope="session", autouse=True)
def _cache_env(specc_cache: Path) -> Iterator[None]:
    """In-process jobs use the session's throwaway cache (tests/conftest.py), never ~/.cache/specc: set for the whole
    session, so module fixtures see it too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECC_CACHE", str(specc_cache))
        yield


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models train fastest, and bit-reproducibly with the CLI subprocesses (OMP_NUM_THREADS=1), on one
    thread; the setting is put back after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
