"""Failures on one process or all: every process exits promptly, the error is shown once.

Every command runs under a timeout (60 s for the failures): a process left waiting on a
collective would fail the test instead of hanging it. With `--max-restarts 1`, a process
killed mid-run makes torchrun restart the job, which continues from the last complete
checkpoint and ends with the weights of a run never interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from disttools import GPT_TINY, ROOT, STEPS, Run, losses, metrics, sets, weights


@pytest.mark.slow  # a torchrun job each (both cores)
def test_an_error_on_rank_1_only_stops_both_processes(torchrun: Run, tmp_path: Path) -> None:
    """Rank 1 fails after step 3 while rank 0 goes on into step 4's gradient reduction."""
    out = tmp_path / "run"
    try:
        done = torchrun("--fail", "1:3", "--", "train", GPT_TINY, "--out", str(out), "--quiet", *sets(), timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("the processes did not all exit within 60 s after rank 1 failed")
    assert done.returncode != 0
    message = "injected failure: the data after step 3 is unreadable on rank 1"
    assert done.stderr.count(message) == 1, done.stderr
    assert "internal error" not in done.stderr and "lost contact" not in done.stderr, done.stderr
    assert "[rank" not in done.stderr, done.stderr  # no process's own traceback (torchrun's summary aside)
    assert max(losses(out)) <= 4  # rank 0 did not run on alone


@pytest.mark.slow  # a torchrun job each (both cores)
def test_a_spec_error_is_shown_once(cli: Run, tmp_path: Path) -> None:
    """Every process would hit it; one process per machine reads the spec first, so one shows it."""
    try:
        done = cli("train", GPT_TINY, "--out", str(tmp_path / "run"), "--nproc", "2", *sets("train.lr=-1"), timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("the processes did not all exit within 60 s after a spec error")
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("error[") == 1, done.stderr
    assert "train.lr" in done.stderr or "lr" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # the message itself is checked in test_split.py
def test_an_uneven_global_batch_is_a_clear_error_shown_once(cli: Run, tmp_path: Path) -> None:
    try:
        done = cli("train", GPT_TINY, "--out", str(tmp_path / "run"), "--nproc", "2", "--quiet",
                     *sets("train.batch_size=3"), timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("the processes did not all exit within 60 s after a batch error")
    assert done.returncode == 1, done.stderr
    text = ("error: [train] batch_size × grad_accum = 3 × 1 = 3 samples per step (the global batch) cannot be split "
            "evenly among 2 processes; make it a multiple of 2 (e.g. 4), or run on a number of processes that divides 3")
    assert done.stderr.count(text) == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


@pytest.fixture(scope="module")
def two_with_dropout(torchrun: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-process run with dropout on: each process's RNG stream is part of its state."""
    out = tmp_path_factory.mktemp("dropout") / "run"
    done = torchrun("--", "train", GPT_TINY, "--out", str(out), "--quiet", *sets("params.dropout=0.1"))
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow  # a torchrun job each (both cores)
def test_a_killed_process_is_restarted_and_the_run_ends_as_if_never_stopped(torchrun: Run, two_with_dropout: Path,
                                                                           tmp_path: Path) -> None:
    """SIGKILL of rank 1 after step 12 (checkpoints at 5 and 10): torchrun restarts both processes, which
    continue from step 10 and end bit-identical to the uninterrupted run."""
    out = tmp_path / "run"
    done = torchrun("--kill", "1:12", "--", "train", GPT_TINY, "--out", str(out), "--quiet", *sets("params.dropout=0.1"),
                    max_restarts=1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(f"restart 1: continuing {out} from step-00000010") == 1, done.stdout
    a, b = weights(out), weights(two_with_dropout)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    volatile = {"tokens_per_s", "elapsed"}
    strip = [[{k: v for k, v in line.items() if k not in volatile} for line in metrics(run)] for run in (out, two_with_dropout)]
    assert strip[0] == strip[1]
    assert sorted(losses(out)) == list(range(1, STEPS + 1))


def _launch_and_signal(env: dict[str, str], out: Path, signal_of: Callable[[subprocess.Popen], None]
                       ) -> tuple[subprocess.CompletedProcess, list[int]]:
    """`specc train --nproc 2` for many steps; once step 2 is logged, `signal_of(launcher)` (the launcher
    runs `-m specc`, so a signal comes from outside). Returns the finished command and the workers' pids."""
    proc = subprocess.Popen([sys.executable, "-m", "specc", "train", GPT_TINY, "--out", str(out), "--quiet", "--nproc", "2",
                             *sets("train.steps=5000", "train.save_every=1000", "train.eval_every=1000")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a hang guard, generous for a loaded machine
        while proc.poll() is None and time.monotonic() < deadline and not _logged(out, 2):
            time.sleep(0.05)
        workers = _children(proc.pid)
        signal_of(proc)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), workers


@pytest.mark.slow
def test_without_restarts_a_killed_process_fails_the_job(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The launcher reports a process that died without a word (nothing else would)."""
    workers: list[int] = []

    def kill_a_worker(launcher: subprocess.Popen) -> None:
        workers[:] = _children(launcher.pid)
        assert len(workers) == 2, workers
        os.kill(max(workers), signal.SIGKILL)

    done, _ = _launch_and_signal(cli_env, tmp_path / "run", kill_a_worker)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("was killed by SIGKILL") == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
def test_ctrl_c_stops_every_process_after_the_same_step_and_saves(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    done, workers = _launch_and_signal(cli_env, out, lambda launcher: launcher.send_signal(signal.SIGINT))
    assert len(workers) == 2
    assert done.returncode == 130, done.stderr
    saved = [p.name for p in (out / "checkpoints").iterdir()]
    assert len(saved) == 1, saved
    step = int(saved[0].split("-")[1])
    assert max(losses(out)) == step
    assert done.stderr.count(f"interrupted after step {step}; continue with --resume {out}") == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def _logged(run: Path, step: int) -> bool:
    try:
        return any(line.startswith(f'{{"step": {step},') for line in (run / "metrics.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    """Child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found
