"""Fixtures of the runtime tests: one trained tiny run.

The throwaway ``SPECC_CACHE`` and the CLI in a subprocess (`cli`, `cli_env`)
come from tests/conftest.py: the tokenizer is trained once per test session
into the cache and reused by every run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtools import GPT_TINY, Run, sets


@pytest.fixture(scope="session")
def trained_run(cli: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny GPT run (40 steps), trained through the CLI once per session."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = cli("train", GPT_TINY, "--out", str(out), "--quiet", *sets())
    assert done.returncode == 0, done.stderr
    return out
