"""Soak (slow): thousands of tiny-GPT steps with periodic checkpoints and evaluation; memory stays flat and no
file handle leaks.

``pytest --runslow tests/reliability/test_soak.py`` (``SPECC_SOAK_STEPS``,
default 3000; a checkpoint and an evaluation every 100 steps, a log line every
10). The process's resident memory and open file descriptors are sampled after
every checkpoint: past a warm-up of the first fifth of the run, the median
resident memory of the last third may exceed that of the first third by no
more than noise (16 MiB), and the open descriptors are the same at every
sample and after the run as before it. A resume of the finished run's
checkpoint is evaluated at the end as well.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable

import pytest

from runtools import GPT_TINY, sets

Record = Callable[..., None]
STEPS = int(os.environ.get("SPECC_SOAK_STEPS", "3000"))
EVERY = 100
NOISE = 16 * 2**20


def rss() -> int:
    """Resident memory of this process in bytes (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> list[str]:
    folder = "/proc/self/fd"
    names = []
    for fd in os.listdir(folder):
        try:
            names.append(os.readlink(f"{folder}/{fd}"))
        except OSError:  # the descriptor listdir itself used, closed by now
            pass
    return sorted(names)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc (Linux)")
def test_soak_memory_is_flat_and_no_file_handle_leaks(tmp_path: Path, tally: Record) -> None:
    from specc.runtime.train.jobs import evaluate_run, train

    out = tmp_path / "run"
    samples: list[tuple[int, int, list[str]]] = []

    def on_step(step: int) -> None:
        if step % EVERY == 0:
            samples.append((step, rss(), open_fds()))

    before = open_fds()
    started = time.perf_counter()
    settings = sets(f"train.steps={STEPS}", f"train.save_every={EVERY}", f"train.eval_every={EVERY}", "train.log_every=10",
                    "train.warmup=50", "train.keep=3", "data.max_documents=40", "train.device=cpu")[1::2]
    train(GPT_TINY, str(out), None, settings, quiet=True, on_step=on_step, say=lambda _: None)
    evaluate_run(str(out), say=lambda _: None)
    seconds = time.perf_counter() - started
    after = open_fds()

    assert len(samples) == STEPS // EVERY
    steady = [s for s in samples if s[0] > STEPS // 5]
    third = max(1, len(steady) // 3)
    early, late = statistics.median(s[1] for s in steady[:third]), statistics.median(s[1] for s in steady[-third:])
    growth = late - early
    fds = {tuple(s[2]) for s in steady}
    tally("soak", steps=STEPS, checkpoints=STEPS // EVERY, evaluations=STEPS // EVERY, seconds=round(seconds),
          rss_first_third_mib=round(early / 2**20, 1), rss_last_third_mib=round(late / 2**20, 1),
          rss_growth_mib=round(growth / 2**20, 2), open_fds_during=sorted(len(f) for f in fds), fds_leaked=len(after) - len(before))
    assert growth < NOISE, f"resident memory grew {growth / 2**20:.1f} MiB over the run"
    assert len(fds) == 1, f"open file descriptors changed during the run: {fds}"
    assert after == before, f"left open: {sorted(set(after) - set(before))}"
    kept = [f"step-{s:08d}" for s in range(EVERY, STEPS + 1, EVERY)][-3:]  # keep = 3, nothing temporary
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == kept
