"""Fixtures of the task tests: a throwaway cache (tokenizers, demo text) for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def task_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("specc-cache")


@pytest.fixture(autouse=True)
def _cache_env(task_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECC_CACHE", str(task_cache))
