"""`specc train | eval | generate` facing users: what a run leaves on disk, and mistakes as clean errors.

Every user mistake exits 1 with a message and no traceback: spec mistakes as
`file:line:col` diagnostics, missing or malformed data, corrupt and hostile
checkpoints. Most cases call the CLI's `main` in-process (same code path as
the `specc` script, minus a process start); `specc eval` also runs for real.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

import specc
from specc.runtime.runs import checkpoint
from specc.runtime.train.session import plan_from_checkpoint
from runtools import SPECS, Run, assert_clean_error, metrics, sets
from specc.canonical import architecture_hash
from specc.cli import main as specc_main


def main(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess:
    status = specc_main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


def spec_file(folder: Path, body: str) -> Path:
    """`folder/spec.toml`: gpt-tiny.toml extended by `body` (its bases copied next to it)."""
    for base in ("gpt-tiny.toml", "gpt2-small.toml"):
        shutil.copy(SPECS / base, folder / base)
    path = folder / "spec.toml"
    path.write_text('format = 1\nextends = "gpt-tiny.toml"\n' + body)
    return path


# -- mistakes in the spec's runtime sections -------------------------------------------------------------
def test_bad_train_key_is_a_diagnostic_with_its_place(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = spec_file(tmp_path, '\n[train]\nstepz = 10\nlr = "fast"\nschedule = "cosin"\n')
    done = main(capsys, "train", str(spec), "--out", str(tmp_path / "run"))
    assert_clean_error(done)
    assert done.stderr == (
        f"{spec}:5:1: error[E010]: unknown key 'stepz'\n"
        "   5 | stepz = 10\n"
        "       ^^^^^\n"
        "  = hint: did you mean 'steps'?\n"
        f"{spec}:6:7: error[E023]: in 'train.lr': unknown name 'fast' in expression\n"
        '   6 | lr = "fast"\n'
        "             ^^^^\n"
        "  = hint: a quoted value is an expression over the spec's params\n"
        f"{spec}:7:12: error[E014]: 'train.schedule': Input should be 'cosine', 'linear' or 'constant'\n"
        '   7 | schedule = "cosin"\n'
        "                  ^^^^^^^\n"
    )
    assert not (tmp_path / "run").exists()


DATA_MISTAKES = {
    "missing file": ('source = "text"\npath = "missing.txt"', "data file not found: {tmp}/missing.txt"),
    "empty folder": ('source = "text"\npath = "texts"', "data folder {tmp}/texts holds no files to read (.txt, .md, .rst, .text"),
    "bad jsonl": ('source = "jsonl"\npath = "docs.jsonl"', "{tmp}/docs.jsonl:2:"),
    "no text field": ('source = "jsonl"\npath = "docs.jsonl"\ntext_field = "body"', "{tmp}/docs.jsonl:1: record has no text field 'body'"),
}


@pytest.mark.parametrize("case", sorted(DATA_MISTAKES))
def test_data_mistakes_are_clean_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "docs.jsonl").write_text('{"text": "fine"}\n{"text": broken\n')
    section, message = DATA_MISTAKES[case]
    spec = spec_file(tmp_path, f"\n[data]\n{section}\n")
    done = main(capsys, "train", str(spec), "--out", str(tmp_path / "run"), "--quiet")
    assert_clean_error(done, message.format(tmp=tmp_path))


# -- what a finished run holds ---------------------------------------------------------------------------
def test_checkpoint_files_load_safely(trained_run: Path) -> None:
    ckpt = checkpoint.latest(trained_run)
    assert ckpt is not None and ckpt.name == "step-00000040"
    assert (ckpt / checkpoint.MARKER).is_file()
    graph = specc.load_graph(SPECS / "gpt-tiny.toml", sets()[1::2])  # the run's architecture
    model = specc.compile_model(graph, init=False)
    weights = load_file(ckpt / "model.safetensors")
    names = set(model.state_dict())
    assert set(weights) <= names and len(weights) == len(names) - 1  # the tied wte / lm_head pair is stored once
    checkpoint.load_weights(ckpt, model)
    assert model.lm_head.weight is model.wte.weight
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    optimizer = torch.load(ckpt / "optimizer.pt", weights_only=True)  # plain tensors and values, no pickled code
    assert {"state", "param_groups"} <= set(optimizer) and len(optimizer["state"]) > 0
    rng = torch.load(ckpt / "rng.pt", weights_only=True)
    assert isinstance(rng["cpu"], torch.Tensor)
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 40 and state["samples"] == 40 * 8
    stored = plan_from_checkpoint(ckpt).spec  # the canonical resolved spec, rebuilt from spec.json alone
    assert architecture_hash(stored) == state["arch_hash"] == architecture_hash(graph.spec)
    assert Tokenizer.from_file(str(ckpt / "tokenizer.json")).get_vocab_size() == 512


def test_specc_eval_prints_loss_and_perplexity(capsys: pytest.CaptureFixture[str], cli: Run, trained_run: Path) -> None:
    done = main(capsys, "eval", str(trained_run))
    assert done.returncode == 0, done.stderr
    assert "val_loss" in done.stdout and "val_ppl" in done.stdout
    done = cli("eval", str(trained_run), "--json")  # the installed command, for real
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["val_ppl"] == pytest.approx(math.exp(result["val_lm"]))
    last = [line for line in metrics(trained_run) if "val_loss" in line][-1]  # the trainer's final evaluation
    assert last["step"] == 40
    assert result["val_loss"] == pytest.approx(last["val_loss"], rel=1e-6)


# -- corrupt and hostile checkpoints ---------------------------------------------------------------------
CORRUPTIONS = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: b"\x07" * 64,
    "huge header": lambda data: (2**60).to_bytes(8, "little") + data[8:],
}


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained_run, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_weights_are_a_clean_error(capsys: pytest.CaptureFixture[str], run_copy: Path, corruption: str) -> None:
    weights = run_copy / "checkpoints" / "step-00000040" / "model.safetensors"
    weights.write_bytes(CORRUPTIONS[corruption](weights.read_bytes()))
    for command in (["eval", str(run_copy)], ["generate", str(run_copy), "--prompt", "The"]):
        assert_clean_error(main(capsys, *command), f"cannot load weights from {weights}")


def test_hostile_optimizer_state_is_refused_unexecuted(capsys: pytest.CaptureFixture[str], run_copy: Path,
                                                       tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return (open, (str(marker), "w"))  # runs on unpickling, unless the loader refuses globals

    ckpt = run_copy / "checkpoints" / "step-00000040"
    torch.save({"state": {0: Payload()}, "param_groups": []}, ckpt / "optimizer.pt")
    done = main(capsys, "train", str(SPECS / "gpt-tiny.toml"), "--resume", str(run_copy), "--quiet", *sets())
    assert_clean_error(done, f"cannot load training state from {ckpt}")
    assert not marker.exists()
