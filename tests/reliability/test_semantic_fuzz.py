"""Semantic fuzzing: specs that parse but mean nothing end in success or located diagnostics, in every command.

`semantic_fuzz.campaign` mutates values per field type and structure across
every section of the reference specs and runs check, compile, hash, and (on a
sample) summary, hash, diff, explain and a 2-step train or finetune, followed
on its run by eval, generate (pretraining) or predict (fine-tuning), and export-hf. CI runs
`SPECC_SEMANTIC_INPUTS` inputs (default 200) with seed `SPECC_SEMANTIC_SEED`
(fixed unless given, so CI is repeatable; printed); `--runslow` runs `SPECC_SEMANTIC_LONG_INPUTS`
(default 5,000). The 10^5-input campaign is the script itself:
``python tests/reliability/semantic_fuzz.py --inputs 100000`` (docs/reliability.md).
"""

from __future__ import annotations

import os
import random
import tomllib
from pathlib import Path
from typing import Callable

import pytest

import semantic_fuzz
import semantic_mutate as sm

CI_INPUTS = int(os.environ.get("SPECC_SEMANTIC_INPUTS", "200"))
LONG_INPUTS = int(os.environ.get("SPECC_SEMANTIC_LONG_INPUTS", "5000"))
Record = Callable[..., None]  # the `tally` fixture


def _seed() -> int:
    return int(os.environ.get("SPECC_SEMANTIC_SEED", "16"))


def _campaign(tally: Record, count: int, name: str, commands: float, train: float) -> None:
    seed = _seed()
    found = semantic_fuzz.campaign(count, seed, commands=commands, train=train)
    tally(name, seed=seed, inputs=found.inputs, outcomes=dict(found.outcomes), mutations=dict(found.mutations),
          commands=dict(found.commands), trained=found.trained, findings=len(found.findings))
    shown = "\n".join(f"  {f['seed']} [{f['stage']}] {f['detail']}\n    {f['labels']}" for f in found.findings[:10])
    assert not found.findings, f"SPECC_SEMANTIC_SEED={seed}: {found.line()}\n{shown}"
    assert found.outcomes["ok"] > 0 and found.outcomes["diagnostics"] > 0  # neither all broken nor all missed
    assert {"value", "drop", "dangling", "cycle", "section", "text"} <= set(found.mutations)


def test_semantic_campaign(tally: Record) -> None:
    _campaign(tally, CI_INPUTS, "semantic fuzz (CI)", commands=0.05, train=0.0)


@pytest.mark.slow
def test_long_semantic_campaign(tally: Record) -> None:
    _campaign(tally, LONG_INPUTS, "semantic fuzz (long)", commands=0.05, train=0.02)


# -- the mutator itself ------------------------------------------------------------------------------
def test_every_section_has_fields_to_mutate() -> None:
    """The fields come from each section's schema (set in the seed or not) and from every op a node names."""
    data = {"model": {"nodes": {"e": {"op": "embedding", "in": "tokens", "vocab": 8, "dim": 4}}},
            "objective": {"mlm": {}}, "tasks": {"t": {"type": "classification", "head": "x"}}}
    paths = {f.path: f for f in sm.seed_fields(data)}
    assert paths[("init", "std")].kind == "float" and paths[("train", "steps")].kind == "int"
    assert paths[("tokenizer", "kind")].kind == "enum" and "bpe" in paths[("tokenizer", "kind")].members
    assert paths[("train", "betas")].kind == "list" and paths[("train", "loss_spike", "factor")].kind == "float"
    assert paths[("objective", "mlm", "mask_prob")].kind == "float"
    assert paths[("tasks", "t", "train", "lr")].kind == "float" and paths[("tasks", "t", "data", "max_train")].kind == "int"
    assert paths[("model", "nodes", "e", "init_std")].kind == "float" and paths[("model", "nodes", "e", "in")].kind == "ref"
    assert paths[("tasks", "t", "max_len")].kind == "int" and ("adapters", "lora", "rank") not in paths


def test_adapters_and_task_types_have_their_own_fields() -> None:
    """[adapters.lora] fields come from its schema; each task type adds its own keys (translation's beam)."""
    data = {"adapters": {"lora": {"targets": ["*.qkv"]}}, "tasks": {"t": {"type": "translation", "head": "x"}}}
    paths = {f.path: f for f in sm.seed_fields(data)}
    assert paths[("adapters", "lora", "rank")].kind == "int" and paths[("adapters", "lora", "dropout")].kind == "float"
    assert paths[("adapters", "lora", "alpha")].kind == "float" and paths[("adapters", "lora", "train")].kind == "list"
    assert paths[("tasks", "t", "beam")].kind == "int" and paths[("tasks", "t", "prefix")].kind == "str"


def test_a_toy_finetune_runs_through_the_oracle(tmp_path: Path) -> None:
    """A seed that declares a task: a valid input also runs a 2-step `specc finetune` (from random initialisation),
    then `eval`, `predict` and `export-hf` on the fine-tuned run."""
    folder = semantic_fuzz.spec_folder(tmp_path)
    seeds = semantic_fuzz.load_seeds(folder)
    seed = seeds["bert-tiny-ner.toml"]
    m = sm.Mutant(seed.name, seed.data, ["value:tasks.ner.max_len"], [(("tasks", "ner", "max_len"), "48")],
                  sets=["tasks.ner.max_len=48"])
    outcome = semantic_fuzz.check_input(m, seed, folder, random.Random(0), commands=0.0, train=1.0)
    assert outcome.kind == "ok" and outcome.trained, outcome
    assert outcome.commands == ["finetune", "eval", "predict", "export-hf"], outcome


def test_a_toy_train_runs_eval_generate_and_export_through_the_oracle(tmp_path: Path) -> None:
    """A pretraining seed: a valid input's 2-step `specc train` is followed by `eval`, `generate` (a few tokens)
    and `export-hf` on its run."""
    folder = semantic_fuzz.spec_folder(tmp_path)
    seeds = semantic_fuzz.load_seeds(folder)
    seed = seeds["gpt-tiny.toml"]
    m = sm.Mutant(seed.name, seed.data, ["value:train.lr"], [(("train", "lr"), "0.001")], sets=["train.lr=0.001"])
    outcome = semantic_fuzz.check_input(m, seed, folder, random.Random(0), commands=0.0, train=1.0)
    assert outcome.kind == "ok" and outcome.trained, outcome
    assert outcome.commands == ["train", "eval", "generate", "export-hf"], outcome


def test_an_export_left_behind_after_a_refusal_is_a_finding(tmp_path: Path) -> None:
    """The oracle itself: export-hf exiting 1 while its output folder exists counts as half-written output."""
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    with pytest.raises(semantic_fuzz._Finding, match="exit 1 but hf/ was left"):
        semantic_fuzz._export_hf(tmp_path / "no-such-run", tmp_path)


def test_written_toml_reads_back_as_the_table() -> None:
    data = {"format": 1, "params": {"x": float("inf"), "y": -0.0, "s": 'a"b\\c\x00'},
            "model": {"nodes": {"a": {"op": "add", "in": ["b", "c"], "with": {"k": 1e-320}}}}, "train": {"betas": [0.9, 1.0]}}
    back = tomllib.loads(sm.to_toml(data))
    assert back == data


@pytest.mark.parametrize("edit", ["dup_line", "dup_header"])
def test_duplicated_keys_do_not_parse(edit: str) -> None:
    text = sm.to_toml({"format": 1, "train": {"lr": 1.0}, "data": {"source": "default"}})
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(sm.edit_text(text, edit, random.Random(0)))


def test_one_input_that_was_a_traceback(tmp_path: Path) -> None:
    """[init] std = "(-1) ** 0.5" (issue 16): a located diagnostic now, through the fuzzer's own oracle."""
    folder = semantic_fuzz.spec_folder(tmp_path)
    seeds = {"gpt-tiny.toml": semantic_fuzz.Seed("gpt-tiny.toml", {}, [], None)}
    m = sm.Mutant("gpt-tiny.toml", {}, ["value:init.std"], [(("init", "std"), '"(-1) ** 0.5"')],
                  overlay={"init": {"std": "(-1) ** 0.5"}})
    outcome = semantic_fuzz.check_input(m, seeds["gpt-tiny.toml"], folder, random.Random(0), commands=0.0, train=0.0)
    assert (outcome.kind, outcome.stage) == ("diagnostics", "check"), outcome
