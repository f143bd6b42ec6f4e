"""Fixtures of the reliability suite: the throwaway cache for the whole session, one torch thread.

The tally of what was tried (`tally`) lives in tests/conftest.py, so the run's
controller prints it under pytest-xdist too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))  # runtools: the runtime tests' helpers and tiny-run settings

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
