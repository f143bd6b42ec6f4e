"""The first run's report: where the time went, and what a tiny causal LM's sample can show."""

from __future__ import annotations

from pathlib import Path

from runtools import GPT_TINY, sets

from specc.runtime.train import jobs
from specc.runtime.train.trainer import TrainResult


def test_train_says_where_its_time_went_and_what_to_expect(tmp_path: Path) -> None:
    said: list[str] = []
    out = tmp_path / "run"
    overrides = sets("train.steps=4", "train.sample_tokens=5", "train.eval_every=2")[1::2]  # the values of the --set pairs
    jobs.train(GPT_TINY, str(out), None, overrides, quiet=True, say=said.append)
    timing = next(line for line in said if line.startswith("time: "))
    for phase in ("tokenizer", "data", "training", "evaluation", "checkpoints", "sample", "total"):
        assert f"{phase} " in timing, timing
    note = "\n".join(said[said.index(next(s for s in said if s.startswith("what to expect: "))):])
    assert "have seen 1,024 tokens (" in note and "passes over" in note  # 4 steps of 4 x 2 sequences of 32 tokens
    assert f"--out {out}-long --set train.steps=40" in note  # 10 x this run's steps


def test_no_note_once_a_run_has_seen_enough_tokens() -> None:
    enough = TrainResult(Path("r"), steps=100, tokens=20 * 1000, seconds=1.0, tokens_per_s=1000.0)
    assert jobs.expectations(1000, enough, 500, "s.toml", Path("r")) == []
    short = TrainResult(Path("r"), steps=100, tokens=19 * 1000, seconds=1.0, tokens_per_s=1000.0)
    lines = jobs.expectations(1000, short, 500, "s.toml", Path("r"))
    assert lines[0].startswith("what to expect: 1,000 parameters have seen 19,000 tokens (38.0 passes over 500 training "
                               "tokens), where compute-optimal training would see about 20,000")
    assert jobs.expectations(2_000_000, short, 500, "s.toml", Path("r"))[0].startswith("what to expect: 2.0 M parameters")
    assert "--set train.steps=1000   # 10 x longer: about 3 minutes at this run's speed" in "\n".join(lines)
