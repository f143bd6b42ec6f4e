"""The run-folder / HF-folder / data fuzzer (folder_fuzz.py) in CI: a seeded handful of (damage, command) pairs, the
same each run so CI is repeatable (SPECC_FOLDER_FUZZ_SEED draws others); `--runslow` runs every pair. The oracle is
folder_fuzz.run_case's: exit status 0 or 1, no traceback, no crash signal, no hang, nothing written outside the
target, the undamaged checkpoints byte-identical."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Callable

import pytest

import folder_fuzz

CASES = int(os.environ.get("SPECC_FOLDER_FUZZ_CASES", "2"))


def _campaign(cases: list[folder_fuzz.Case], seed: int, cli_env: dict[str, str], tally: Callable[..., None]) -> None:
    result = folder_fuzz.campaign(cases, seed, {**cli_env}, log=lambda _: None)
    tally("folder fuzz", cases=result["cases"], findings=len(result["findings"]), seed=seed)  # type: ignore[arg-type]
    assert not result["findings"], f"SPECC_FOLDER_FUZZ_SEED={seed}: {result['findings']}"


def test_a_seeded_handful_of_damaged_folders(cli_env: dict[str, str], tally: Callable[..., None]) -> None:
    seed = int(os.environ.get("SPECC_FOLDER_FUZZ_SEED") or 959369332)
    print(f"SPECC_FOLDER_FUZZ_SEED={seed}")
    _campaign(random.Random(seed).sample(folder_fuzz.all_cases(), CASES), seed, cli_env, tally)


@pytest.mark.slow
def test_every_damage_kind_on_every_command(cli_env: dict[str, str], tally: Callable[..., None]) -> None:
    _campaign(folder_fuzz.all_cases(), 0, cli_env, tally)


def test_the_oracle_catches_a_traceback(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The fuzzer can fail: a command that ends in an internal error (here: an unknown option of `eval` would be
    exit status 2) is a finding."""
    sources = {"run": tmp_path / "run", "hf": tmp_path / "hf", "data": tmp_path / "docs.jsonl"}
    (tmp_path / "run" / "checkpoints" / "step-00000001").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "step-00000001" / "COMPLETE").write_text("1")
    broken = folder_fuzz.Case("run", "state.json", "empty", "eval")
    real = folder_fuzz.RUN_COMMANDS["eval"]
    folder_fuzz.RUN_COMMANDS["eval"] = lambda run, out: ["eval", str(run), "--no-such-option"]
    try:
        found = folder_fuzz.run_case(broken, sources, tmp_path / "scratch", cli_env, 0)
    finally:
        folder_fuzz.RUN_COMMANDS["eval"] = real
    assert found is not None and found.startswith("exit status 2"), found
