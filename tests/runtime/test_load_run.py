"""`specc.load_run` gives a run's model with its weights, tokenizer, spec and task; the commands that use a
checkpoint name it, and a resumed run says where it resumed and counts the whole run's steps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import specc
from runtools import GPT_TINY, sets
from specc.runtime.runs import checkpoint
from specc.runtime.errors import UserError


def test_load_run_returns_the_trained_model_tokenizer_and_spec(trained_run: Path) -> None:
    run = specc.load_run(trained_run)
    assert isinstance(run, specc.LoadedRun)
    assert run.step == 40 and run.checkpoint == trained_run / "checkpoints" / "step-00000040"
    assert run.spec.name == "gpt-tiny" and run.task is None and run.labels is None
    assert not run.model.training
    stored = load_file(str(run.checkpoint / "model.safetensors"))
    params = run.model.state_dict()
    for name, tensor in stored.items():  # every stored tensor, tied ones too, is in the model
        assert torch.equal(params[name], tensor), name
    assert run.model.lm_head.weight is run.model.wte.weight  # the tie survives loading
    ids = torch.tensor([run.tokenizer.encode("The import statement")])
    with torch.no_grad():
        logits = run.model(tokens=ids)["logits"]
    assert logits.shape == (1, ids.shape[1], 512)
    assert run.describe() == f"checkpoint: {run.checkpoint} (step 40)"


def test_load_run_of_a_kept_step_and_of_a_missing_one(trained_run: Path) -> None:
    kept = sorted(int(d.name[5:]) for d in (trained_run / "checkpoints").iterdir() if d.name.startswith("step-"))
    earlier = specc.load_run(trained_run, step=kept[0])
    assert earlier.step == kept[0] < 40
    assert specc.load_run(earlier.checkpoint).step == kept[0]  # a checkpoint folder itself
    with pytest.raises(UserError, match=r"has no complete checkpoint of step 7 \(kept: "):
        specc.load_run(trained_run, step=7)


def test_eval_and_generate_name_the_checkpoint_they_use(cli, trained_run: Path) -> None:  # type: ignore[no-untyped-def]
    line = f"checkpoint: {trained_run / 'checkpoints' / 'step-00000040'} (step 40)"
    for command in (["eval", str(trained_run)], ["generate", str(trained_run), "--prompt", "The", "--max-new-tokens", "4"]):
        done = cli(*command)
        assert done.returncode == 0, done.stderr
        assert line in done.stderr.splitlines(), (command, done.stderr)


def test_a_resumed_run_says_where_it_resumed_and_counts_the_whole_run(cli, trained_run: Path,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    last = checkpoint.latest(run)
    assert last is not None
    shutil.rmtree(last)  # as if stopped before its last checkpoint
    before = checkpoint.latest(run)
    assert before is not None
    step = checkpoint.load_state(before).step
    done = cli("train", GPT_TINY, "--resume", str(run), "--quiet", *sets())
    assert done.returncode == 0, done.stderr
    assert f"resuming from step {step} ({before})" in done.stderr.splitlines()
    summary = next(line for line in done.stdout.splitlines() if line.startswith("done: "))
    assert summary.startswith(f"done: 40 steps, resumed at step {step}: this session {40 - step} steps, ")
