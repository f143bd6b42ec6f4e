"""DDP on 2 CPU processes (gloo) trains what 1 process trains, and only rank 0 writes.

The same spec and global batch on 1 and 2 processes: every logged loss within 1e-5
(relative), final weights within 1e-6; validation totals summed across processes equal
one process's over the same batches; checkpoints move between 1 and 2 processes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from disttools import GPT_TINY, STEPS, Run, assert_losses_close, keep_until, losses, max_weight_diff, metrics, sets, \
    val_losses


def test_two_processes_train_what_one_process_trains(one_process: Path, two_processes: tuple[Path, subprocess.CompletedProcess]
                                                     ) -> None:
    two, _ = two_processes
    assert_losses_close(two, one_process, range(1, STEPS + 1))
    assert max_weight_diff(two, one_process) <= 1e-6
    vo, vt = val_losses(one_process), val_losses(two)
    assert sorted(vo) == sorted(vt) == [10, 20]
    assert all(abs(vo[s] - vt[s]) <= 1e-5 * vo[s] for s in vo), (vo, vt)
    # The two runs are not trivially the same: training moved the weights.
    assert losses(two)[STEPS] < losses(two)[1] - 0.5


def test_validation_sums_over_processes_exactly(cli: Run, two_processes: tuple[Path, subprocess.CompletedProcess]) -> None:
    """Five validation batches (8, 8, 8, 8, 6 sequences) on two processes: rank 0 scores three, rank 1 two;
    the logged loss is the one-process total over all of them, not a mean of the two processes' means."""
    two, _ = two_processes
    done = cli("eval", str(two), "--json")
    assert done.returncode == 0, done.stderr
    alone = json.loads(done.stdout)
    logged = [line for line in metrics(two) if "val_loss" in line][-1]
    assert logged["step"] == STEPS
    assert logged["val_loss"] == pytest.approx(alone["val_loss"], rel=1e-9, abs=0)
    assert logged["val_ppl"] == pytest.approx(alone["val_ppl"], rel=1e-9, abs=0)

    # Per-batch totals, to show that a mean of per-process means would differ (the test can fail).
    from specc.runtime.train.loop import BatchSource, evaluate, val_ranges
    from specc.runtime.data.prepare import token_store
    from specc.runtime.train.jobs import load_model

    model, plan, tok = load_model(two, "cpu")
    cfg = plan.config.train
    source = BatchSource(plan.objectives, token_store(plan.corpus(), "val", tok), tok, cfg.seq_len, cfg.seed + 7919)
    ranges = val_ranges(source, cfg)
    assert [n for _, n in ranges] == [8, 8, 8, 8, 6]
    device = next(model.parameters()).device
    per_rank = [evaluate(model, plan.objectives, (source.get(*r) for r in ranges[k::2]), device, cfg.precision).means()["lm"]
                for k in (0, 1)]
    assert abs((per_rank[0] + per_rank[1]) / 2 - alone["val_lm"]) > 1e-4


def test_only_rank_0_prints_and_writes(two_processes: tuple[Path, subprocess.CompletedProcess], audit_dir: Path) -> None:
    two, done = two_processes
    assert done.stdout.count("specc train:") == 1 and done.stdout.count("done: 20 steps") == 1, done.stdout
    assert "distributed: 2 processes (ddp, gloo)" in done.stdout
    assert [line["step"] for line in metrics(two) if "loss" in line] == list(range(1, STEPS + 1))
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == [f"step-{s:08d}" for s in (5, 10, 15, 20)]
    report = audit_dir / "rank-1.txt"
    assert report.exists(), "rank 1 wrote no audit report"
    assert report.read_text() == "", f"rank 1 wrote into the run folder:\n{report.read_text()}"
    assert "Traceback" not in done.stderr, done.stderr


def test_checkpoint_of_two_processes_resumes_on_one(cli: Run, two_processes: tuple[Path, subprocess.CompletedProcess],
                                                    tmp_path: Path) -> None:
    two, _ = two_processes
    run = tmp_path / "run"
    shutil.copytree(two, run)
    keep_until(run, 10)
    done = cli("train", GPT_TINY, "--resume", str(run), "--quiet", *sets())
    assert done.returncode == 0, done.stderr
    assert losses(run).keys() == losses(two).keys()
    assert all(losses(run)[s] == losses(two)[s] for s in range(1, 11))  # kept as logged
    assert_losses_close(run, two, range(11, STEPS + 1))
    assert max_weight_diff(run, two) <= 1e-6


@pytest.mark.slow  # two more torchrun jobs; the default run keeps DDP's equality, validation, rank-0 writes and 2 → 1 resume
def test_checkpoint_of_one_process_resumes_on_two(cli: Run, one_process: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(one_process, run)
    keep_until(run, 10)
    done = cli("train", GPT_TINY, "--resume", str(run), "--quiet", "--nproc", "2", *sets())
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("done: 20 steps") == 1
    assert_losses_close(run, one_process, range(11, STEPS + 1))
    assert max_weight_diff(run, one_process) <= 1e-6


@pytest.mark.slow  # two more torchrun jobs; the default run keeps DDP's equality, validation, rank-0 writes and 2 → 1 resume
def test_micro_batches_accumulate_before_the_reduction(torchrun: Run, one_process: Path, tmp_path: Path) -> None:
    """batch_size 2 x grad_accum 4: each of 2 processes runs 2 micro-batches of 2 per step (DDP's no_sync on
    the first); the same global batch of 8 as the one-process run, so the same training."""
    out = tmp_path / "run"
    done = torchrun("--", "train", GPT_TINY, "--out", str(out), "--quiet", *sets("train.batch_size=2", "train.grad_accum=4"))
    assert done.returncode == 0, done.stderr
    assert_losses_close(out, one_process, range(1, STEPS + 1))
    assert max_weight_diff(out, one_process) <= 1e-6
