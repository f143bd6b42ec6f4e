"""Kill and resume: a run stopped at any moment and continued with `--resume` ends bit-identical.

Real processes: `specc train` (through `killable_train.py`, which signals itself
at a chosen step) is killed with SIGKILL or interrupted with SIGINT, then
continued with `specc train --resume`. Its final weights, optimizer state and
every logged training and validation line must equal those of one
uninterrupted run exactly (CPU, fp32, dropout on). Kill steps are drawn at
random; the seed is in the test id's failure message (set SPECC_TEST_SEED to
replay one).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from specc.runtime.runs import checkpoint
from specc.runtime.data.prepare import token_store
from specc.runtime.train.loop import BatchSource
from specc.runtime.train.session import load_run
from runtools import GPT_TINY, KILLABLE, ROOT, Run, assert_clean_error, metrics, sets

STEPS, SAVE_EVERY, EPOCH = 40, 6, 31  # EPOCH: the first step of the second pass over the data (checked below)
VOLATILE = {"tokens_per_s", "elapsed"}  # wall-clock fields; everything else in metrics.jsonl must match


@pytest.fixture(scope="module")
def rng() -> random.Random:
    seed = int(os.environ.get("SPECC_TEST_SEED", "20"))  # fixed in CI; set it to draw others
    print(f"kill steps drawn with SPECC_TEST_SEED={seed}")
    return random.Random(seed)


def between_checkpoints(rng: random.Random, lo: int, hi: int) -> int:
    """A step in [lo, hi] that writes no checkpoint."""
    return rng.choice([s for s in range(lo, hi + 1) if s % SAVE_EVERY])


def train(cli: Run, out: Path, *extra: str, resume: bool = False, kill: list[str] | None = None) -> subprocess.CompletedProcess:
    where = ["--resume", str(out)] if resume else ["--out", str(out)]
    args = ["train", GPT_TINY, *where, "--quiet", *sets(*extra)]
    if kill is None:
        return cli(*args)
    return cli(*kill, "--", *args, script=KILLABLE)


def assert_identical(run: Path, reference: Path, why: str) -> None:
    """Final weights, optimizer state and metrics lines of `run` equal the reference's, bit for bit."""
    mine, ref = checkpoint.latest(run), checkpoint.latest(reference)
    assert mine is not None and ref is not None and mine.name == ref.name == f"step-{STEPS:08d}", (mine, why)
    a, b = load_file(mine / "model.safetensors"), load_file(ref / "model.safetensors")
    assert a.keys() == b.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert not changed, f"{why}: weights differ in {changed}"
    oa = torch.load(mine / "optimizer.pt", weights_only=True)["state"]
    ob = torch.load(ref / "optimizer.pt", weights_only=True)["state"]
    assert oa.keys() == ob.keys()
    assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i]), f"{why}: optimizer state differs"
    got = [{k: v for k, v in line.items() if k not in VOLATILE} for line in metrics(run)]
    want = [{k: v for k, v in line.items() if k not in VOLATILE} for line in metrics(reference)]
    assert [line["step"] for line in got if "loss" in line] == list(range(1, STEPS + 1)), why
    assert got == want, f"{why}: metrics differ"


def test_reference_run_crosses_an_epoch_and_keeps_the_last_two_checkpoints(trained_run: Path) -> None:
    plan, _, tok = load_run(trained_run)
    windows = BatchSource(plan.objectives, token_store(plan.corpus(), "train", tok), tok, 32, 0).layout.n
    per_step = 8  # batch_size 4 x grad_accum 2
    assert (EPOCH - 1) * per_step <= windows < EPOCH * per_step  # step EPOCH reads the second epoch's first sample
    assert EPOCH < STEPS
    names = sorted(p.name for p in (trained_run / "checkpoints").iterdir())
    assert names == ["step-00000036", "step-00000040"]  # keep = 2 by default
    for name in names:
        files = {p.name for p in (trained_run / "checkpoints" / name).iterdir()}
        assert files >= {"COMPLETE", "model.safetensors", "optimizer.pt", "rng.pt", "spec.json", "state.json", "tokenizer.json"}


def test_sigkill_twice_then_resume_is_bit_identical(cli: Run, trained_run: Path, tmp_path: Path, rng: random.Random) -> None:
    """Killed between checkpoints in the first epoch, resumed, killed inside a step of the second, resumed."""
    first = between_checkpoints(rng, SAVE_EVERY + 1, EPOCH - 2)
    second = between_checkpoints(rng, EPOCH, STEPS - 2)
    why = f"SIGKILL after step {first}, then inside step {second + 1}"
    out = tmp_path / "run"
    done = train(cli, out, kill=["--kill-at", str(first)])
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert metrics(out)[-1]["step"] == first  # lines past the last checkpoint exist and must be replaced
    done = train(cli, out, resume=True, kill=["--kill-at", str(second), "--mid-step", "2"])
    assert done.returncode == -signal.SIGKILL, done.stderr
    done = train(cli, out, resume=True)
    assert done.returncode == 0, done.stderr
    assert_identical(out, trained_run, why)


@pytest.mark.slow  # a third kill; SIGKILL twice, Ctrl-C and half-written checkpoints stay in the default run
def test_sigkill_from_outside_at_a_random_moment(cli: Run, cli_env: dict[str, str], trained_run: Path, tmp_path: Path,
                                                 rng: random.Random) -> None:
    """Another process kills the run whenever it likes: mid-step, mid-evaluation or mid-checkpoint."""
    target, delay = rng.randrange(SAVE_EVERY, STEPS - 5), rng.uniform(0.0, 0.05)
    out = tmp_path / "run"
    cmd = [sys.executable, KILLABLE, "--pace", "0.05", "--", "train", GPT_TINY, "--out", str(out), "--quiet", *sets()]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and not _logged_step(out, target):
            time.sleep(0.005)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill (rc {proc.returncode}): {err}"
    done = train(cli, out, resume=True)
    assert done.returncode == 0, done.stderr
    assert_identical(out, trained_run, f"SIGKILL {delay:.3f} s after step {target} was logged")


def _logged_step(run: Path, step: int) -> bool:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(line.startswith(f'{{"step": {step}, "loss"') for line in lines)


def test_ctrl_c_inside_a_step_saves_a_resumable_checkpoint(cli: Run, trained_run: Path, tmp_path: Path,
                                                           rng: random.Random) -> None:
    """Ctrl-C while a step builds its second micro-batch: the run saves a consistent checkpoint and exits 130."""
    step = between_checkpoints(rng, 2, STEPS - 2)
    out = tmp_path / "run"
    done = train(cli, out, kill=["--kill-at", str(step), "--signal", "INT", "--mid-step", "2"])
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    saved = checkpoint.latest(out)
    assert saved is not None and checkpoint.load_state(saved).step in (step, step + 1), saved
    done = train(cli, out, resume=True)
    assert done.returncode == 0, done.stderr
    assert_identical(out, trained_run, f"SIGINT inside step {step + 1}")


def test_half_written_checkpoints_are_never_loaded(cli: Run, trained_run: Path, tmp_path: Path) -> None:
    """A newer directory without its COMPLETE marker, or still under its temporary name, is skipped."""
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    root = out / "checkpoints"
    shutil.rmtree(root / "step-00000040")  # as if killed after step 40 was logged but before its save
    good = root / "step-00000036"
    torn = root / "step-00000038"  # renamed into place, but its marker lost
    shutil.copytree(good, torn)
    (torn / checkpoint.MARKER).unlink()
    (torn / "model.safetensors").write_bytes(b"\0" * 16)
    pending = root / ".tmp-step-00000039-12345"  # complete, but the rename never happened
    shutil.copytree(good, pending)
    (pending / "model.safetensors").write_bytes(b"\0" * 16)
    assert checkpoint.latest(out) == good

    done = train(cli, out, resume=True)
    assert done.returncode == 0, done.stderr
    assert_identical(out, trained_run, "resumed past a torn and a pending checkpoint")
    assert sorted(p.name for p in root.iterdir()) == ["step-00000036", "step-00000038", "step-00000040"]  # no .tmp-


# -- refusals: the CLI in-process (no subprocess needed to see its exit status and stderr) ------------
def main(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess:
    from specc.cli import main as specc_main

    status = specc_main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


def test_resuming_a_changed_architecture_is_refused(capsys: pytest.CaptureFixture[str], trained_run: Path) -> None:
    before = (trained_run / "metrics.jsonl").read_text()
    done = main(capsys, "train", GPT_TINY, "--resume", str(trained_run), "--quiet", *sets("params.d_model=48", "params.heads=3"))
    assert_clean_error(done, "different architecture", "specc diff")
    assert (trained_run / "metrics.jsonl").read_text() == before  # the run is left as it was


@pytest.mark.parametrize("exists", [False, True])
def test_resume_of_a_run_without_checkpoints_is_a_clean_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               exists: bool) -> None:
    run = tmp_path / "run"
    if exists:
        (run / "checkpoints" / ".tmp-step-00000006-1").mkdir(parents=True)
    done = main(capsys, "train", GPT_TINY, "--resume", str(run), "--quiet", *sets())
    assert_clean_error(done, f"--resume: {run} {'holds no complete checkpoint' if exists else 'does not exist'}")
    assert run.exists() == exists


def test_a_new_run_into_a_finished_run_is_refused(capsys: pytest.CaptureFixture[str], trained_run: Path) -> None:
    before = (trained_run / "metrics.jsonl").read_text()
    done = main(capsys, "train", GPT_TINY, "--out", str(trained_run), "--quiet", *sets())
    assert_clean_error(done, f"{trained_run} already holds a run", f"--resume {trained_run}")
    assert (trained_run / "metrics.jsonl").read_text() == before
