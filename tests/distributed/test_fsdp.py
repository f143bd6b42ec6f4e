"""FSDP2 (`[train] parallel = "fsdp"`) on 2 CPU processes with gloo: each layer of the repeated
block and the rest of the model are sharded, and training computes what one process computes.

Checkpoints hold the full model and the optimizer state in one-process form, so an FSDP run
resumes on one process and a one-process run resumes under FSDP. (NCCL and the bf16
mixed-precision policy need GPUs: tests/test_gpu.py.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from disttools import GPT_TINY, STEPS, Run, assert_losses_close, keep_until, losses, max_weight_diff, sets, val_losses


@pytest.fixture(scope="module")
def fsdp_run(torchrun: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`torchrun --standalone --nproc-per-node 2 -m specc train ...` with FSDP2."""
    out = tmp_path_factory.mktemp("fsdp") / "run"
    done = torchrun("train", GPT_TINY, "--out", str(out), "--quiet", *sets("train.parallel=fsdp"), module=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("distributed: 2 processes (fsdp, gloo)") == 1, done.stdout
    return out


@pytest.mark.slow  # an FSDP torchrun job; FSDP's optimizer-state check runs in one process in test_run_folder_faults
def test_fsdp_trains_what_one_process_trains(fsdp_run: Path, one_process: Path) -> None:
    assert_losses_close(fsdp_run, one_process, range(1, STEPS + 1))
    assert max_weight_diff(fsdp_run, one_process) <= 1e-6
    vo, vf = val_losses(one_process), val_losses(fsdp_run)
    assert all(abs(vo[s] - vf[s]) <= 1e-5 * vo[s] for s in vo), (vo, vf)


@pytest.mark.slow  # an FSDP torchrun job; FSDP's optimizer-state check runs in one process in test_run_folder_faults
def test_fsdp_checkpoints_have_the_one_process_layout(fsdp_run: Path, one_process: Path) -> None:
    """The same tensors under the same names, and the optimizer state keyed the same way."""
    ckpt = f"checkpoints/step-{STEPS:08d}"
    mine = torch.load(fsdp_run / ckpt / "optimizer.pt", weights_only=True)
    ref = torch.load(one_process / ckpt / "optimizer.pt", weights_only=True)
    assert [g["params"] for g in mine["param_groups"]] == [g["params"] for g in ref["param_groups"]]
    assert mine["state"].keys() == ref["state"].keys()
    for i in ref["state"]:
        for key in ("exp_avg", "exp_avg_sq"):
            assert mine["state"][i][key].shape == ref["state"][i][key].shape
            assert torch.allclose(mine["state"][i][key], ref["state"][i][key], rtol=1e-3, atol=1e-7), (i, key)
    rng = torch.load(fsdp_run / ckpt / "rng.pt", weights_only=True)
    assert len(rng["ranks"]) == 2


@pytest.mark.slow  # the layout test above shows the checkpoint is a one-process one
def test_fsdp_checkpoint_resumes_on_one_process(cli: Run, fsdp_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(fsdp_run, run)
    keep_until(run, 10)
    done = cli("train", GPT_TINY, "--resume", str(run), "--quiet", *sets("train.parallel=fsdp"))
    assert done.returncode == 0, done.stderr
    assert_losses_close(run, fsdp_run, range(11, STEPS + 1))
    assert max_weight_diff(run, fsdp_run) <= 1e-6


@pytest.mark.slow
def test_one_process_checkpoint_resumes_under_fsdp(cli: Run, one_process: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(one_process, run)
    keep_until(run, 10)
    done = cli("train", GPT_TINY, "--resume", str(run), "--quiet", "--nproc", "2", *sets("train.parallel=fsdp"))
    assert done.returncode == 0, done.stderr
    assert_losses_close(run, one_process, range(11, STEPS + 1))
    assert max_weight_diff(run, one_process) <= 1e-6
    assert losses(run)[STEPS] < losses(run)[1]
