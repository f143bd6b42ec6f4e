"""Fixtures of the runtime tests: a throwaway cache, the CLI in a subprocess, one trained tiny run.

The tokenizer is trained once per test session into a temporary
``SPECC_CACHE`` and reused by every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtools import GPT_TINY, ROOT, Run, sets


@pytest.fixture(scope="session")
def specc_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("specc-cache")


@pytest.fixture(autouse=True)
def _cache_env(specc_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process jobs use the session's throwaway cache too, never ~/.cache/specc."""
    monkeypatch.setenv("SPECC_CACHE", str(specc_cache))


@pytest.fixture(scope="session")
def cli_env(specc_cache: Path) -> dict[str, str]:
    """Environment of CLI subprocesses: the test cache, and one thread (two runs side by side stay fast)."""
    return {**os.environ, "SPECC_CACHE": str(specc_cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="session")
def cli(cli_env: dict[str, str]) -> Run:
    """Run `python -m specc ARGS` (or `python SCRIPT ARGS` with script=...) in the repository root."""

    def run(*args: str, script: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        head = [sys.executable, script] if script else [sys.executable, "-m", "specc"]
        return subprocess.run([*head, *args], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def trained_run(cli: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny GPT run (40 steps), trained through the CLI once per session."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = cli("train", GPT_TINY, "--out", str(out), "--quiet", *sets())
    assert done.returncode == 0, done.stderr
    return out
