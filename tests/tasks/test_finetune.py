"""End to end: `specc finetune` on each task type's demo data at tiny size, `specc eval`, `specc predict`,
and every bad-data case as a clean error before anything is written (translation:
test_finetune_translation.py).

The models start from random initialisation (the tokenizer is trained from the
spec's [tokenizer] section on a slice of the default corpus) and train for a
few hundred steps at most: enough to beat each task's trivial baseline (majority
class, training mean, per-word tag, random span, copying the source). The full
demos, and pretrained versus random initialisation, are slow tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from finetune_runs import MODEL, WIDER, cli, run, tiny, train_losses
from helpers import SPECS
from specc.runtime.train.finetune import FinetuneOutcome, finetune

# -- one quick fine-tune per task type -----------------------------------------------------------
@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FinetuneOutcome]:
    out = tmp_path_factory.mktemp("sentiment") / "run"
    return out, run("bert-tiny-sentiment.toml", "sentiment", out, tiny("sentiment", 120))


def test_classification_beats_the_majority_class(sentiment_run: tuple[Path, FinetuneOutcome]) -> None:
    out, outcome = sentiment_run
    val = outcome.evaluations[0]
    assert val.split == "validation" and val.baseline is not None
    assert val.metrics["accuracy"] > val.baseline["accuracy"] + 0.1
    assert val.metrics["mcc"] > 0.2 and val.baseline["mcc"] == 0.0
    saved = json.loads((out / "eval.json").read_text())
    assert saved["validation"]["metrics"] == val.metrics and set(saved) == {"task", "type", "validation", "test"}
    task = json.loads(next((out / "checkpoints").iterdir()).joinpath("task.json").read_text())
    assert task["labels"] == ["negative", "positive"] and task["task"] == "sentiment"


def test_eval_with_data_and_predict_through_the_cli(sentiment_run: tuple[Path, FinetuneOutcome], tmp_path: Path) -> None:
    out, outcome = sentiment_run
    data = tmp_path / "reviews.jsonl"
    data.write_text('{"text": "The documentation is excellent.", "label": "positive"}\n'
                    '{"text": "The installer is awful.", "label": "negative"}\n')
    code, stdout, stderr = cli("eval", str(out), "--data", str(data), "--json")
    assert code == 0, stderr
    scores = json.loads(stdout)
    assert scores["examples"] == 2 and set(scores) >= {"accuracy", "f1_macro", "mcc"}
    code, stdout, _ = cli("eval", str(out), "--split", "test")
    assert code == 0 and "accuracy" in stdout and "test (400)" in stdout
    text = tmp_path / "reviews.txt"
    text.write_text("The tutorial is wonderful.\nThe profiler is broken.\n")
    preds = tmp_path / "preds.jsonl"
    code, _, stderr = cli("predict", str(out), "--input", str(text), "--output", str(preds), "--quiet")
    assert code == 0, stderr
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["The tutorial is wonderful.", "The profiler is broken."]
    assert all(r["label"] in ("negative", "positive") and sum(r["probs"].values()) == pytest.approx(1, abs=1e-4) for r in rows)


def test_regression_correlates(tmp_path: Path) -> None:
    outcome = run("bert-tiny-tasks.toml", "rating", tmp_path / "run", tiny("rating", 150))
    val = outcome.evaluations[0]
    assert val.metrics["pearson"] > 0.3 and val.baseline is not None and val.baseline["pearson"] == 0.0


def test_token_classification_beats_the_per_word_majority_tag(tmp_path: Path) -> None:
    outcome = run("bert-tiny-ner.toml", "ner", tmp_path / "run", tiny("ner", 150))
    val = outcome.evaluations[0]
    assert val.baseline is not None and val.metrics["entity_f1"] > val.baseline["entity_f1"]


def test_extractive_qa_beats_a_random_span(tmp_path: Path) -> None:
    """Measured: EM 10.3 / F1 12.2 against the random span's 0.8 / 5.3, in about 13 s."""
    sets = tiny("qa", 200, *WIDER, "params.layers=2", "tasks.qa.max_len=64", "tasks.qa.doc_stride=24", "tasks.qa.max_query_len=24",
                "tasks.qa.train.batch_size=16", "tasks.qa.data.max_train=1000")
    outcome = run("bert-tiny-qa.toml", "qa", tmp_path / "run", sets)
    losses = train_losses(tmp_path / "run")
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5  # from about ln(64) for start and end alike
    val = outcome.evaluations[0]
    assert val.baseline is not None and val.metrics["exact_match"] > val.baseline["exact_match"] + 4, (val.metrics, val.baseline)
    assert val.metrics["f1"] > val.baseline["f1"] + 3


# -- bad data: a clean error naming the file and line, before anything is written ------------------
def _spec(tmp_path: Path, data: dict[str, str]) -> Path:
    base = os.path.relpath(SPECS / "bert-tiny-sentiment.toml", tmp_path)
    table = "\n".join(f'{k} = "{v}"' for k, v in data.items())
    spec = tmp_path / "task.toml"
    spec.write_text(f'format = 1\nextends = "{base}"\n\n[tasks.sentiment]\nfrom = ""\n\n'
                    f'[tasks.sentiment.data]\ndemo = ""  # clears the inherited demo\n{table}\n')
    return spec


def _finetune_cli(tmp_path: Path, spec: Path) -> tuple[int, str]:
    sets = [arg for s in MODEL for arg in ("--set", s)]
    code, _, err = cli("finetune", str(spec), "--out", str(tmp_path / "out"), "--search-path", str(SPECS), *sets)
    return code, err


@pytest.mark.parametrize("files, fragment", [
    ({"train": "missing.jsonl"}, "data file not found: {tmp}/missing.jsonl"),
    ({"train": "train.jsonl", "validation": "no-field.jsonl"}, "{tmp}/no-field.jsonl:2: missing field 'text' (fields here: label, sentence)"),
    ({"train": "train.jsonl", "validation": "bad-label.jsonl"}, "{tmp}/bad-label.jsonl:1: unknown label 'meh' (labels: negative, positive)"),
    ({"train": "train.jsonl", "validation": "empty.jsonl"}, "{tmp}/empty.jsonl: the file holds no examples"),
    ({"train": "train.jsonl", "test": "broken.jsonl"}, "{tmp}/broken.jsonl:1:10: invalid JSON"),
])
def test_bad_data_is_a_clean_error_and_writes_nothing(tmp_path: Path, files: dict[str, str], fragment: str) -> None:
    rows = [{"text": f"The api is {w}.", "label": lab} for w, lab in [("good", "positive"), ("awful", "negative")] * 5]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "no-field.jsonl").write_text('{"text": "ok", "label": "positive"}\n{"sentence": "x", "label": "negative"}\n')
    (tmp_path / "bad-label.jsonl").write_text('{"text": "ok", "label": "meh"}\n')
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "broken.jsonl").write_text('{"text": oops}\n')
    spec = _spec(tmp_path, files)
    code, err = _finetune_cli(tmp_path, spec)
    assert code == 1 and "Traceback" not in err, err
    assert fragment.format(tmp=tmp_path) in err
    assert not (tmp_path / "out").exists()


def test_a_resumed_fine_tune_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    """The task workload's data position is the step, so --resume continues exactly (constant lr, fp32, CPU)."""
    from safetensors.torch import load_file

    def sets(steps: int) -> list[str]:
        return [*tiny("sentiment", steps), "tasks.sentiment.train.schedule=constant", "tasks.sentiment.train.warmup=0",
                "tasks.sentiment.train.save_every=10", "tasks.sentiment.train.eval_every=10",
                "tasks.sentiment.data.max_train=200"]

    run("bert-tiny-sentiment.toml", "sentiment", tmp_path / "whole", sets(20))
    run("bert-tiny-sentiment.toml", "sentiment", tmp_path / "split", sets(10))
    finetune(str(SPECS / "bert-tiny-sentiment.toml"), None, None, "sentiment", sets(20), resume=str(tmp_path / "split"),
             quiet=True, say=lambda s: None)
    whole = load_file(tmp_path / "whole" / "checkpoints" / "step-00000020" / "model.safetensors")
    split = load_file(tmp_path / "split" / "checkpoints" / "step-00000020" / "model.safetensors")
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)
    losses = lambda p: [x for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert [json.loads(x)["loss"] for x in losses(tmp_path / "whole") if '"loss"' in x] == \
        [json.loads(x)["loss"] for x in losses(tmp_path / "split") if '"loss"' in x]
