"""Damaged run folders (issue 23, findings 1, 2 and 7): a clear error, never a crash, a traceback or a blocked resume.

* ``optimizer.pt`` with moments of the wrong shape made the fused AdamW kernel
  read outside its buffers (a segfault, an abort, gigabytes of memory); a
  2-element ``step`` was a traceback. The state is now checked against the
  model's parameters before `load_state_dict`.
* A torn or foreign ``metrics.jsonl`` line blocked every resume with a
  `JSONDecodeError`; a full disk while writing it was an `OSError` traceback.
* ``rng.pt`` of the wrong structure, ``state.json`` nested deep, holding a
  5,000-digit integer or a negative count, were tracebacks or trained extra
  steps silently.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from reltools import assert_clean_error, run_main
from runtools import GPT_TINY, ROOT, sets

SETS = sets("train.steps=4", "train.save_every=2", "train.eval_every=2", "train.log_every=1")
RESUME = sets("train.steps=6", "train.save_every=2", "train.eval_every=2", "train.log_every=1")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from specc.runtime.train.jobs import train

    out = tmp_path_factory.mktemp("run-folder") / "gpt"
    train(GPT_TINY, str(out), None, SETS[1::2], quiet=True, say=lambda _: None)
    return out


@pytest.fixture
def copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "gpt")
    return tmp_path / "gpt"


def _resume(capsys: pytest.CaptureFixture[str], folder: Path) -> Any:
    return run_main(capsys, "train", GPT_TINY, "--resume", str(folder), "--quiet", *RESUME)


def _ckpt(folder: Path) -> Path:
    return folder / "checkpoints" / "step-00000004"


# -- 1: optimizer.pt checked against the parameters ---------------------------------------------------------------
def _moment(state: dict, key: str, make: Callable[[torch.Tensor], Any]) -> None:
    state["state"][0][key] = make(state["state"][0][key])


OPTIMIZER_DAMAGE: dict[str, tuple[Callable[[dict], None], str]] = {
    "exp_avg larger": (lambda s: _moment(s, "exp_avg", lambda t: torch.zeros(t.numel() * 64)), "'exp_avg' has shape (196608,)"),
    "exp_avg_sq smaller": (lambda s: _moment(s, "exp_avg_sq", lambda t: torch.zeros(2, 2)), "'exp_avg_sq' has shape (2, 2)"),
    "exp_avg transposed": (lambda s: _moment(s, "exp_avg", lambda t: t.t().contiguous()), "'exp_avg' has shape (32, 96)"),
    "2-element step": (lambda s: _moment(s, "step", lambda t: torch.tensor([1.0, 2.0])),
                       "'step' is a tensor of shape (2,), not one non-negative number"),
    "negative step": (lambda s: _moment(s, "step", lambda t: torch.tensor(-3.0)), "'step' is a tensor of shape ()"),
    "integer moments": (lambda s: _moment(s, "exp_avg", lambda t: t.to(torch.int64)), "'exp_avg' has dtype torch.int64"),
    "NaN moments": (lambda s: _moment(s, "exp_avg_sq", lambda t: torch.full_like(t, float("nan"))),
                    "'exp_avg_sq' holds NaN or infinite values"),
    "a string moment": (lambda s: _moment(s, "exp_avg", lambda t: "zeros"), "'exp_avg' is a str, not a tensor"),
    "state of a 99th parameter": (lambda s: s["state"].__setitem__(99, {"step": torch.tensor(1.0)}),
                                  "state for parameter 99, which the optimizer does not have (16 parameters)"),
    "a group missing": (lambda s: s["param_groups"].pop(), "1 parameter groups, the optimizer has 2"),
    "a group of other parameters": (lambda s: s["param_groups"][0]["params"].pop(), "parameter group 0 lists other parameters"),
    "betas a string": (lambda s: s["param_groups"][0].__setitem__("betas", "0.9"), "setting 'betas' is '0.9'"),
    "not a state": (lambda s: s.pop("state"), "not an optimizer state"),
}


@pytest.mark.parametrize("damage", sorted(OPTIMIZER_DAMAGE))
def test_a_tampered_optimizer_state_is_refused_before_the_fused_kernel(capsys: pytest.CaptureFixture[str], copy: Path,
                                                                       damage: str) -> None:
    path = _ckpt(copy) / "optimizer.pt"
    state = torch.load(path, weights_only=True)
    change, expected = OPTIMIZER_DAMAGE[damage]
    change(state)
    torch.save(state, path)
    done = _resume(capsys, copy)
    assert_clean_error(done, f"cannot load training state from {path}", expected)
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]


# -- 2: metrics.jsonl repaired on resume; a full disk while writing it stops the run cleanly ------------------------
def _steps(folder: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_torn_last_metrics_line_is_dropped_with_a_warning(capsys: pytest.CaptureFixture[str], copy: Path) -> None:
    log = copy / "metrics.jsonl"
    log.write_bytes(log.read_bytes() + b'{"step": 5, "loss": 6.1')  # the disk filled up mid-line
    done = _resume(capsys, copy)
    assert done.returncode == 0, done.stderr
    assert f"warning: {log}: dropped a torn last line (23 bytes" in done.stderr
    steps = _steps(copy)
    assert steps == sorted(steps) and steps[-1] == 6 and steps.count(5) == 1


def test_metrics_lines_past_the_resumed_step_are_trimmed(capsys: pytest.CaptureFixture[str], copy: Path) -> None:
    shutil.rmtree(_ckpt(copy))  # resume from step 2: the log's lines for steps 3 and 4 belong to the lost future
    assert _resume(capsys, copy).returncode == 0
    steps = [s for s in _steps(copy)]
    assert steps == sorted(steps) and len([s for s in steps if s == 3]) == 1


@pytest.mark.parametrize("line", [b"[1, 2, 3]", b'{"loss": 1.0}', b"\xff\xfe\x00binary", b'{"step": "two"}',
                                  b'{"step": ' + b"9" * 5000 + b"}", b"[" * 5000, b'{"step": 1, "x": "\\ud800"}'])
def test_foreign_metrics_lines_are_moved_aside_and_counted(capsys: pytest.CaptureFixture[str], copy: Path,
                                                           line: bytes) -> None:
    log = copy / "metrics.jsonl"
    lines = log.read_bytes().splitlines()
    log.write_bytes(b"\n".join([*lines[:2], line, *lines[2:]]) + b"\n")
    done = _resume(capsys, copy)
    assert done.returncode == 0, done.stderr
    assert f"warning: {log}: 1 line(s) are not metrics records (line 3); moved to metrics.jsonl.dropped" in done.stderr
    assert (copy / "metrics.jsonl.dropped").read_bytes() == line + b"\n"
    assert _steps(copy)[-1] == 6


def test_a_folder_in_place_of_the_metrics_log_is_a_clear_error(capsys: pytest.CaptureFixture[str], copy: Path) -> None:
    log = copy / "metrics.jsonl"
    log.unlink()
    log.mkdir()
    assert_clean_error(_resume(capsys, copy), f"{log} is not a regular file (the run's metrics log)")


def test_a_full_disk_while_writing_metrics_stops_the_run_keeping_the_checkpoint(
        capsys: pytest.CaptureFixture[str], copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.runtime.runs import runlog

    class FullDisk:
        """The log file on a disk that fills up in the middle of its second line."""

        def __init__(self, fh: Any) -> None:
            self.fh, self.lines = fh, 0

        def write(self, text: str) -> int:
            self.lines += 1
            if self.lines == 2:
                self.fh.write(text[:10])
                self.fh.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.fh.write(text))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

    real = runlog.MetricsLog.__init__

    def opened_on_a_full_disk(self: Any, *args: Any) -> None:
        real(self, *args)
        self.fh = FullDisk(self.fh)

    monkeypatch.setattr(runlog.MetricsLog, "__init__", opened_on_a_full_disk)
    done = _resume(capsys, copy)
    assert_clean_error(done, f"cannot write {copy / 'metrics.jsonl'}: No space left on device; "
                             "the last complete checkpoint, step-00000004, is intact")
    monkeypatch.setattr(runlog.MetricsLog, "__init__", real)
    done = _resume(capsys, copy)  # room again: the torn line is dropped and the run finishes
    assert done.returncode == 0 and "dropped a torn last line" in done.stderr, done.stderr
    assert _steps(copy)[-1] == 6


# -- 7: rng.pt and state.json validated ------------------------------------------------------------------------------
RNG_DAMAGE: dict[str, Any] = {
    "a list": [1, 2, 3],
    "no cpu state": {"cuda": torch.zeros(3, dtype=torch.uint8)},
    "cpu state of floats": {"cpu": torch.zeros(10)},
    "cpu state too short": {"cpu": torch.zeros(10, dtype=torch.uint8)},
}


@pytest.mark.parametrize("damage", sorted(RNG_DAMAGE))
def test_an_rng_state_of_the_wrong_structure_is_refused(capsys: pytest.CaptureFixture[str], copy: Path, damage: str) -> None:
    path = _ckpt(copy) / "rng.pt"
    torch.save(RNG_DAMAGE[damage], path)
    assert_clean_error(_resume(capsys, copy), f"cannot load training state from {path}")


STATE_DAMAGE = {
    "nested deep": ('{"step": ' + "[" * 3000 + "]" * 3000 + "}", "nested more than 64 deep"),
    "a 5,000-digit step": ('{"step": ' + "7" * 5000 + "}", "an integer of 5000 digits (at most 40)"),
    "negative samples": ('{"step": 4, "samples": -100}', "samples = -100 (a count is a whole number from 0 to 2**63 - 1)"),
    "negative step": ('{"step": -5}', "step = -5 (a count"),
    "a step past 2**63": ('{"step": 9223372036854775808}', "step = 9223372036854775808 (a count"),
    "a lone surrogate": ('{"step": 4, "base": "\\ud800"}', "lone UTF-16 surrogate"),
}


@pytest.mark.parametrize("damage", sorted(STATE_DAMAGE))
def test_a_hostile_state_json_is_a_clear_error(capsys: pytest.CaptureFixture[str], copy: Path, damage: str) -> None:
    path = _ckpt(copy) / "state.json"
    text, expected = STATE_DAMAGE[damage]
    path.write_text(text)
    for argv in (["train", GPT_TINY, "--resume", str(copy), "--quiet", *RESUME], ["eval", str(copy)]):
        assert_clean_error(run_main(capsys, *argv), f"cannot read {path}", expected)


def _set_token_id(path: Path, token_id: int) -> None:
    data = json.loads(path.read_text())
    vocab = data["model"]["vocab"]
    vocab[next(iter(vocab))] = token_id
    path.write_text(json.dumps(data))


def test_tokenizer_ids_beyond_the_token_store_dtype_are_refused(capsys: pytest.CaptureFixture[str], copy: Path) -> None:
    path = _ckpt(copy) / "tokenizer.json"
    _set_token_id(path, 70000)  # past uint16, the token store's dtype for 512 tokens
    for argv in (["eval", str(copy)], ["generate", str(copy), "--prompt", "The", "--max-new-tokens", "2"]):
        assert_clean_error(run_main(capsys, *argv), f"cannot read tokenizer {path}: its token ids run to 70,000 but it has 512 tokens")


@pytest.mark.parametrize("name", ["spec.json", "lineage.json"])
def test_spec_and_lineage_nested_deep_are_clear_errors(capsys: pytest.CaptureFixture[str], copy: Path, name: str) -> None:
    path = _ckpt(copy) / name
    path.write_text('{"format": ' + "[" * 100_000 + "]" * 100_000 + "}")
    # the lineage is read when the resumed run writes its next checkpoint (which names the run's parent)
    argv = ["eval", str(copy)] if name == "spec.json" else ["train", GPT_TINY, "--resume", str(copy), "--quiet", *RESUME]
    assert_clean_error(run_main(capsys, *argv), f"cannot read {path}", "nested more than 64 deep")


# -- 7: weights that are not finite, or stored as another dtype -------------------------------------------------------
def _poison(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    name = sorted(k for k, t in tensors.items() if t.dim() == 2)[0]
    tensors[name][0, 0] = float("nan")
    save_file(tensors, str(path), metadata={"format": "pt"})


def _as_int(path: Path) -> str:
    """Relabel one F32 tensor's bytes as I32 in the header (the bytes stay: a cast would read garbage)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    name = sorted(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")[0]
    header[name]["dtype"] = "I32"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n :])
    return name


def _weight_readers(copy: Path) -> dict[str, list[str]]:
    return {"generate": ["generate", str(copy), "--prompt", "The", "--max-new-tokens", "3"],
            "eval": ["eval", str(copy)],
            "export-hf": ["export-hf", str(copy), "-o", str(copy.parent / "hf")],
            "warm-start": ["warm-start", str(copy), GPT_TINY, "--out", str(copy.parent / "warm"), *sets("params.layers=2")],
            "train --resume": ["train", GPT_TINY, "--resume", str(copy), "--quiet", *RESUME]}


@pytest.mark.parametrize("damage", ["NaN", "F32 data called I32"])
def test_damaged_weights_are_refused_by_every_reader(capsys: pytest.CaptureFixture[str], copy: Path, damage: str) -> None:
    path = _ckpt(copy) / "model.safetensors"
    if damage == "NaN":
        _poison(path)
        expected = "holds NaN or infinite values"
    else:
        name = _as_int(path)
        expected = f"tensor {name} "
    for command, argv in _weight_readers(copy).items():
        done = run_main(capsys, *argv)
        assert_clean_error(done, f"cannot load weights from {path}", expected)
        assert not (copy.parent / "hf").exists() and not (copy.parent / "warm").exists(), command


# -- 11: generate's arguments -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, value, expected", [
    ("--top-p", "-1", "--top-p -1.0: must be a probability above 0, at most 1"),
    ("--top-p", "2", "--top-p 2.0: must be a probability above 0, at most 1"),
    ("--top-k", "-5", "--top-k -5: must be 0 (off) or a positive number of tokens"),
    ("--temperature", "nan", "--temperature nan: must be 0 (greedy) or a number from 0.0001 to 10,000"),
    ("--temperature", "-1", "--temperature -1.0: must be 0 (greedy)"),
    ("--temperature", "1e-45", "--temperature 1e-45: must be 0 (greedy)"),
    ("--temperature", "inf", "--temperature inf: must be 0 (greedy)"),
    ("--seed", "1" * 23, f"--seed {'1' * 23}: must be a whole number from 0 to 2**63 - 1"),
    ("--seed", "-1", "--seed -1: must be a whole number"),
    ("--max-new-tokens", "-3", "--max-new-tokens -3: must be from 0 to 1,000,000"),
    ("--prompt", "caf\udce9", "--prompt is not valid UTF-8 text"),  # b"caf\xe9" as the command line hands it over
])
def test_generate_arguments_outside_their_domain_are_refused(capsys: pytest.CaptureFixture[str], run: Path, flag: str,
                                                             value: str, expected: str) -> None:
    done = run_main(capsys, "generate", str(run), "--max-new-tokens", "2", flag, value)
    assert_clean_error(done, f"error: {expected}")


def test_an_invalid_utf8_prompt_from_a_real_command_line(cli_env: dict[str, str], run: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "specc", "generate", str(run), "--prompt", os.fsdecode(b"caf\xe9")],
                          cwd=ROOT, env=cli_env, capture_output=True, timeout=300)
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
    assert b"error: --prompt is not valid UTF-8 text" in done.stderr


def test_fsdp_checks_the_full_optimizer_state_before_sharding_it(tmp_path: Path) -> None:
    """`Engine.load` under FSDP: a saved (full, one-process) state is checked against the full parameter
    shapes before it is keyed by name and cut into shards; a good one loads. One gloo process, FSDP2 on CPU."""
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    from specc.runtime import distributed
    from specc.runtime.errors import UserError
    from specc.runtime.train.parallel import Engine

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 3))

    reference = model()
    saver = torch.optim.AdamW(reference.parameters())
    reference(torch.randn(2, 4)).sum().backward()
    saver.step()
    ckpt = tmp_path / "step-00000001"
    ckpt.mkdir()
    torch.save({"cpu": torch.get_rng_state()}, ckpt / "rng.pt")
    assert not dist.is_initialized()
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        sharded = model()
        fully_shard(sharded)
        optimizer = torch.optim.AdamW(sharded.parameters())
        engine = Engine.__new__(Engine)  # the loading half of an engine: no workload, no batches
        engine.model, engine.kind, engine.me = sharded, "fsdp", distributed.ranks()
        for key, bad, expected in [("exp_avg", torch.zeros(7, 4), "'exp_avg' has shape (7, 4)"),
                                   ("exp_avg_sq", torch.zeros(6, 4, dtype=torch.int32), "'exp_avg_sq' has dtype torch.int32")]:
            state = saver.state_dict()
            state["state"][0] = {**state["state"][0], key: bad}
            torch.save(state, ckpt / "optimizer.pt")
            with pytest.raises(UserError, match=re.escape(f"{ckpt / 'optimizer.pt'}: parameter 0 ((6, 4)): {expected}")):
                engine.load(ckpt, optimizer, seed=0, step=1)
            assert not optimizer.state  # refused before anything was loaded
        torch.save(saver.state_dict(), ckpt / "optimizer.pt")
        engine.load(ckpt, optimizer, seed=0, step=1)
        loaded = optimizer.state[optimizer.param_groups[0]["params"][0]]["exp_avg"]
        assert torch.equal(loaded.full_tensor(), saver.state[reference[0].weight]["exp_avg"])
    finally:
        dist.destroy_process_group()
