"""Shared test configuration: markers for slow and GPU tests, a throwaway cache, the CLI in a subprocess.

Every test runs with ``SPECC_CACHE`` set to one temporary folder per session
(tokenizers, token stores and demo text are built once into it and reused),
never ~/.cache/specc. A directory's conftest may override these fixtures by
name (tests/reliability does).

Every random draw in the default run is repeatable: hypothesis is derandomized (profile ``ci``) and the
seeded campaigns use fixed seeds, so a CI failure is a change's doing and replays exactly.
``SPECC_HYPOTHESIS_PROFILE=explore`` and the ``SPECC_*_SEED`` variables explore beyond them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("SPECC_HYPOTHESIS_PROFILE", "ci"))

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # under pytest-xdist the workers share the cores: torch gets its share
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def specc_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("specc-cache")


@pytest.fixture(autouse=True)
def _cache_env(specc_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process steps of a test use the session's throwaway cache too, never ~/.cache/specc."""
    monkeypatch.setenv("SPECC_CACHE", str(specc_cache))


@pytest.fixture(scope="session")
def cli_env(specc_cache: Path) -> dict[str, str]:
    """Environment of CLI subprocesses: the test cache, the repository on the path, and one thread per process
    (two runs side by side, or two processes of one run, share the test machine's cores)."""
    return {**os.environ, "SPECC_CACHE": str(specc_cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="session")
def cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    """Run `python -m specc ARGS` (the --nproc launcher included), or `python SCRIPT ARGS` with script=..., in the
    repository root. Every command has a timeout, so a hang fails the test instead of stalling the suite."""

    def run(*args: str, script: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        head = [sys.executable, script] if script else [sys.executable, "-m", "specc"]
        return subprocess.run([*head, *args], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread until the end of the module, then as before: on tiny tensors, thread start-up and
    contention cost more than they save (much more on a busy 2-core CI box). A module asks for it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the reliability tally ---------------------------------------------------------------------------
# Each test that injects faults or tries inputs adds a line to the session's tally (`tally`); the lines are printed
# at the end of the run and, with ``SPECC_RELIABILITY_REPORT=file.json``, written as JSON, so a CI log says how many
# inputs were fuzzed and how many faults were injected, with what outcome. Under pytest-xdist each worker hands its
# lines to the controller, which prints them.
Tally = Callable[..., None]


FIGURES = pytest.StashKey[dict[str, dict[str, Any]]]()


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Tally:
    """`tally(name, **figures)`: record what a test tried and what came of it."""
    lines = request.config.stash.setdefault(FIGURES, {})

    def record(name: str, **figures: Any) -> None:
        lines.setdefault(name, {}).update(figures)

    return record


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist a worker hands its figures to the controller, which prints them (below)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability_figures"] = json.dumps(session.config.stash.get(FIGURES, {}), default=str)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: merge a finished worker's figures into this session's tally."""
    figures = json.loads(getattr(node, "workeroutput", {}).get("reliability_figures", "{}"))
    lines = node.config.stash.setdefault(FIGURES, {})
    for name, values in figures.items():
        lines.setdefault(name, {}).update(values)


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
