"""Checkpoint lineage, the refusal to resume onto another architecture (with the diff), and warm starts.

The commands run in this process (`specc.cli.main`): each subprocess would spend seconds importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file

from specc.runtime.runs import checkpoint
from runtools import GPT_TINY, sets
from specc.cli import main

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def specc_cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def assert_clean_error(done: tuple[int, str, str], *fragments: str) -> None:
    code, out, err = done
    assert code == 1 and "Traceback" not in out + err, (code, out, err)
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def latest(run: Path) -> Path:
    found = checkpoint.latest(run)
    assert found is not None
    return found


def weights(run: Path) -> dict[str, torch.Tensor]:
    """Tensors of a run's latest checkpoint under their owners' names (the tied LM head is wte)."""
    loaded = load_file(str(latest(run) / "model.safetensors"))
    if "lm_head.weight" in loaded:
        loaded["wte.weight"] = loaded.pop("lm_head.weight")
    return loaded


def test_every_checkpoint_records_its_lineage(trained_run: Path) -> None:
    ckpt = latest(trained_run)
    record = json.loads((ckpt / "lineage.json").read_text())
    state = json.loads((ckpt / "state.json").read_text())
    assert record["hashes"]["architecture"] == state["arch_hash"]
    assert set(record["hashes"]) >= {"architecture", "train", "objective", "tokenizer", "data"}
    assert record["torch_version"] == torch.__version__ and record["specc_version"]
    assert Path(GPT_TINY).read_text() in record["spec_sources"].values()  # the spec text, every file of its chain
    assert record["parent"] is None


def test_resuming_onto_a_changed_architecture_shows_the_diff(specc_cli: Cli, trained_run: Path) -> None:
    before = (trained_run / "metrics.jsonl").read_text()
    done = specc_cli("train", GPT_TINY, "--resume", str(trained_run), "--quiet", *sets("params.layers=2"))
    assert_clean_error(done, "different architecture", "depth 1 → 2", "+ h.1", "loads as is",
                       "wte, wpe, ln_f and h.0 still load from the old checkpoint", f"--warm-start {latest(trained_run)}")
    assert (trained_run / "metrics.jsonl").read_text() == before


def test_warm_start_grows_layers_by_copying_then_training_resumes(specc_cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "grown"
    done = specc_cli("warm-start", str(trained_run), GPT_TINY, "--out", str(out), "--map", "h.1=h.0", *sets("params.layers=2"))
    assert done[0] == 0, done
    assert "loaded 28 of 28 tensors" in done[1] and "layer mappings: h.1=h.0" in done[1]
    old, new = weights(trained_run), weights(out)
    assert set(new) == set(old) | {k.replace("h.0.", "h.1.") for k in old if k.startswith("h.0.")}
    for name, tensor in new.items():
        assert torch.equal(tensor, old[name.replace("h.1.", "h.0.")]), name
    start = latest(out)
    assert start.name == "step-00000000" and (start / "tokenizer.json").read_text() == (latest(trained_run) / "tokenizer.json").read_text()
    parent = json.loads((start / "lineage.json").read_text())["parent"]
    assert parent["checkpoint"] == str(latest(trained_run)) and parent["mapping"] == ["h.1=h.0"] and parent["loaded"] == 28

    done = specc_cli("train", GPT_TINY, "--resume", str(out), "--quiet", *sets("params.layers=2", "train.steps=2", "train.save_every=1"))
    assert done[0] == 0, done
    assert latest(out).name == "step-00000002"
    assert json.loads((latest(out) / "lineage.json").read_text())["parent"] == parent  # the run keeps naming its parent


def test_train_warm_start_loads_what_fits_and_initialises_the_rest(specc_cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "wider-ffn"
    done = specc_cli("train", GPT_TINY, "--warm-start", str(trained_run), "--out", str(out), "--quiet",
               *sets("params.d_ff=96", "train.steps=1"))
    assert done[0] == 0, done
    assert "warm start:" in done[1] and "3 changed shape" in done[1]
    start = load_file(str(out / "checkpoints" / "step-00000000" / "model.safetensors"))
    old = weights(trained_run)
    assert torch.equal(start["h.0.attn.qkv.weight"], old["h.0.attn.qkv.weight"])
    assert start["h.0.mlp.fc_in.weight"].shape == (96, 32) != old["h.0.mlp.fc_in.weight"].shape


def test_warm_start_refuses_a_folder_that_holds_a_run_and_a_bad_mapping(specc_cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    done = specc_cli("warm-start", str(trained_run), GPT_TINY, "--out", str(trained_run), *sets())
    assert_clean_error(done, "already holds a run")
    done = specc_cli("warm-start", str(trained_run), GPT_TINY, "--out", str(tmp_path / "x"), "--map", "h.0:2=h.0:1", *sets())
    assert_clean_error(done, "2 new layers but 1 old ones")
    assert not (tmp_path / "x").exists()
