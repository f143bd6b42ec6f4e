"""Fixtures of the distributed tests: commands under torchrun, reference runs.

Real processes: 2 CPU processes under torchrun with gloo. Every command has a timeout, so a
hang fails the test instead of stalling the suite. The throwaway cache and `python -m specc`
in a subprocess (`cli`, `cli_env`) come from tests/conftest.py. The reference runs (one
process, two processes) are trained once per session and copied by tests that continue them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch.distributed as dist

from disttools import GPT_TINY, ROOT, WORKER, Run, sets, torchrun_args

if not dist.is_available():
    pytest.skip("torch.distributed is not available in this build", allow_module_level=True)


@pytest.fixture(scope="session")
def torchrun(cli_env: dict[str, str]) -> Run:
    """`torchrun --standalone` on 2 processes of `worker.py WORKER_ARGS -- SPECC_ARGS`, or of `-m specc` with module=True."""

    def run(*args: str, nproc: int = 2, max_restarts: int = 0, module: bool = False, timeout: float = 180
            ) -> subprocess.CompletedProcess:
        target = ["-m", "specc"] if module else [WORKER]
        return subprocess.run([*torchrun_args(nproc, max_restarts), *target, *args], cwd=ROOT, env=cli_env,
                              capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def one_process(cli: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    done = cli("train", GPT_TINY, "--out", str(out), "--quiet", *sets())
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit")


@pytest.fixture(scope="session")
def two_processes(torchrun: Run, tmp_path_factory: pytest.TempPathFactory, audit_dir: Path
                  ) -> tuple[Path, subprocess.CompletedProcess]:
    """The same run on 2 processes (DDP, gloo), under torchrun, auditing what rank 1 writes."""
    out = tmp_path_factory.mktemp("two") / "run"
    done = torchrun("--audit", str(audit_dir), str(out), "--", "train", GPT_TINY, "--out", str(out), "--quiet", *sets())
    assert done.returncode == 0, done.stderr
    return out, done
