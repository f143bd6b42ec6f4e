"""NCCL on GPUs (skipped without CUDA): DDP and FSDP2 with the bf16 mixed-precision policy.

With one GPU torchrun starts one process, which still joins an NCCL group (of one) and
trains through DDP or FSDP2; with two or more GPUs, two processes. Each run's checkpoint
resumes on one CPU process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from disttools import GPT_TINY, Run, keep_until, losses, sets

GPUS = min(2, torch.cuda.device_count()) if torch.cuda.is_available() else 0


@pytest.mark.gpu
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_nccl_run_in_bf16_resumes_on_one_cpu_process(torchrun: Run, cli: Run, tmp_path: Path, parallel: str) -> None:
    out = tmp_path / "run"
    gpu = sets(f"train.parallel={parallel}", "train.device=cuda", "train.precision=bf16")
    done = torchrun("train", GPT_TINY, "--out", str(out), "--quiet", *gpu, nproc=GPUS, module=True)
    assert done.returncode == 0, done.stderr
    assert f"({parallel}, cpu:gloo,cuda:nccl)" in done.stdout, done.stdout
    got = losses(out)
    assert all(torch.isfinite(torch.tensor(v)) for v in got.values())
    assert got[max(got)] < got[1]

    cpu = tmp_path / "cpu"
    shutil.copytree(out, cpu)
    keep_until(cpu, 10)
    done = cli("train", GPT_TINY, "--resume", str(cpu), "--quiet", *sets("train.device=cpu"))
    assert done.returncode == 0, done.stderr
    assert abs(losses(cpu)[11] - got[11]) < 0.05 * got[11]  # bf16 on GPU against fp32 on CPU
