"""Fine-tuning does each piece of work once: every split is encoded once, one forward pass per validation batch
gives both the loss and the predictions (of tasks that read them off the head), and the trained model is scored
in place. The one-pass results equal the old two-pass path's exactly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import pytest
import torch

from helpers import SPECS, TINY, TINY_T5, records, runner
from specc.compiler import compile_model
from specc.runtime.batch import LossSums
from specc.runtime.data.demos import DEMOS
from specc.runtime.data.labelled import Record
from specc.runtime.data.tokenizer import HEAD_WINDOW, TextTokenizer
from specc.runtime.inference import beam
from specc.runtime.tasks import TASKS
from specc.runtime.tasks.base import TaskRunner
from specc.runtime.train import finetune as ft
from specc.runtime.train import trainer as trainer_mod
from test_lora import SMALL, T5_SMALL, _data, _sets

CPU = torch.device("cpu")
# spec, task, demo, settings (3 validation batches of 4 records)
CASES = {
    "classification": ("bert-tiny-sentiment.toml", "sentiment", "sentiment", TINY),
    "token_classification": ("bert-tiny-ner.toml", "ner", "ner", TINY),
    "extractive_qa": ("bert-tiny-qa.toml", "qa", "qa", [*TINY, "tasks.qa.max_len=48", "tasks.qa.doc_stride=16",
                                                         "tasks.qa.max_query_len=16"]),
    "translation (encoder-decoder)": ("t5-tiny-translate.toml", "translate", "translation",
                                      [*TINY_T5, "tasks.translate.beam=2", "tasks.translate.max_new_tokens=5"]),
    "translation (decoder-only)": ("gpt-tiny-translate.toml", "translate", "translation",
                                   [*TINY, "tasks.translate.beam=2", "tasks.translate.max_new_tokens=5"]),
}


def _two_passes(r: TaskRunner, model: torch.nn.Module, records: Sequence[Record]) -> tuple[dict[str, float], list[Any]]:
    """What evaluation did before: the loss over gold features, then predictions from features encoded again
    without gold answers, in a second forward pass."""
    sums = LossSums()
    gold = r.encode(records, gold=True)
    size = r.params.eval_batch_size
    with torch.no_grad():
        for first in range(0, len(gold), size):
            batch = r.collate(gold[first : first + size])
            r.loss(model(**batch.inputs), batch, sums)
    return sums.means(), r.predict(model, records, r.encode(records, gold=False), CPU)


@pytest.mark.parametrize("case", list(CASES))
def test_one_pass_gives_the_loss_and_predictions_of_two(case: str) -> None:
    spec, task, demo, sets = CASES[case]
    kind = {"t5-tiny-translate.toml": "unigram", "gpt-tiny-translate.toml": "bpe"}.get(spec, "wordpiece")
    r = runner(spec, task, [*sets, f"tasks.{task}.eval_batch_size=4"], DEMOS[demo].build().train, kind)
    records = DEMOS[demo].build().validation[:12]
    torch.manual_seed(0)
    model = compile_model(r.graph, CPU).eval()
    loss, preds = _two_passes(r, model, records)
    sums, one = r.loss_and_predictions(model, records, r.encode(records, gold=True), CPU)
    assert sums.means() == loss and one == preds  # bit for bit


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Every call of a task's encode (its record count) and every forward pass of a compiled model (its batch size),
    and how many models were compiled."""
    seen: dict[str, list[Any]] = {"encode": [], "forward": [], "compiled": []}
    for kind in {t.runner for t in TASKS.values()}:
        encode = kind.encode

        def counting(self: TaskRunner, records: Sequence[Record], gold: bool, _encode: Any = encode) -> Any:
            seen["encode"].append(len(records))
            return _encode(self, records, gold)

        monkeypatch.setattr(kind, "encode", counting)

    def compiling(compile_fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> torch.nn.Module:
            model = compile_fn(*a, **k)
            seen["compiled"].append(1)
            model.register_forward_pre_hook(lambda m, args, kwargs: seen["forward"].append(
                len(next(iter(kwargs.values())))), with_kwargs=True)
            return model
        return wrapper

    monkeypatch.setattr(trainer_mod, "compile_model", compiling(trainer_mod.compile_model))
    monkeypatch.setattr(ft, "compile_model", compiling(ft.compile_model))
    return seen


def test_a_finetune_encodes_each_split_once_and_runs_one_pass_per_evaluation_batch(
        counted: dict[str, list[Any]], tmp_path: Path) -> None:
    train, val = _data(tmp_path, "sentiment")  # 64 training and 4 validation examples
    test = tmp_path / "test.jsonl"
    test.write_text(val.read_text() * 2)  # 8 test examples
    steps, every = 4, 2
    sets = [s for s in _sets("sentiment", train, val, SMALL, steps) if "eval_every" not in s]
    sets += [f"tasks.sentiment.train.eval_every={every}", f'tasks.sentiment.data.test="{test}"',
             "tasks.sentiment.eval_batch_size=3", "tasks.sentiment.train.keep_best=false"]
    outcome = ft.finetune(str(SPECS / "bert-tiny-sentiment.toml"), None, str(tmp_path / "run"), "sentiment", sets,
                          quiet=True, say=lambda _: None)
    assert sorted(counted["encode"]) == [4, 8, 64]  # train, validation and test: once each
    assert counted["compiled"] == [1]  # the trained model is scored in place
    validation, testing = [3, 1], [3, 3, 2]  # batches of 3
    training = [4] * steps
    evaluations = (steps // every) * validation
    # the final validation scores the weights the last evaluation (step 4) just evaluated: no pass of its own
    assert sorted(counted["forward"]) == sorted(training + evaluations + testing)
    with (tmp_path / "run" / "metrics.jsonl").open() as lines:
        last = [row for row in map(json.loads, lines) if "val_accuracy" in row][-1]
    assert last["step"] == steps and outcome.evaluations[0].metrics["accuracy"] == last["val_accuracy"]


def test_the_best_checkpoint_is_loaded_into_the_trained_model(counted: dict[str, list[Any]], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """When an earlier evaluation was the best, its weights are scored: loaded into the trained model, which is
    not compiled again, and the scores are those of a model loaded afresh from that checkpoint."""
    from specc.runtime.tasks import TaskWorkload

    script = iter([0.9, 0.1])  # the first evaluation is the best
    evaluate = TaskWorkload.evaluate

    def scripted(self: TaskWorkload, model: Any, device: Any, cfg: Any) -> dict[str, float]:
        return {**evaluate(self, model, device, cfg), "val_accuracy": next(script)}

    monkeypatch.setattr(TaskWorkload, "evaluate", scripted)
    train, val = _data(tmp_path, "sentiment")
    sets = [s for s in _sets("sentiment", train, val, SMALL, 4) if "eval_every" not in s and "save_every" not in s]
    sets += ["tasks.sentiment.train.eval_every=2", "tasks.sentiment.train.save_every=100"]
    outcome = ft.finetune(str(SPECS / "bert-tiny-sentiment.toml"), None, str(tmp_path / "run"), "sentiment", sets,
                          quiet=True, say=lambda _: None)
    assert counted["compiled"] == [1]
    # the scored weights (step 2) are not the last evaluated (step 4): the final validation predicts again
    assert sorted(counted["forward"]) == sorted([4] * 4 + [4] * 2 + [4])
    run = ft.load_task_run(tmp_path / "run", "cpu")
    assert run.ckpt.name == "step-00000002"
    again = ft.evaluate_records(run.runner, run.setup.task, run.model, ft.read_split(str(val), run.setup.task.params.data,
                                                                                        tmp_path).records, "validation")
    assert outcome.evaluations[0].metrics == again.metrics


@pytest.fixture
def tokenized(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the tokenizer encodes (a record's side, encoded whole or its head)."""
    seen: list[str] = []
    encode = TextTokenizer.encode

    def counting(self: TextTokenizer, text: str) -> list[int]:
        seen.append(text)
        return encode(self, text)

    monkeypatch.setattr(TextTokenizer, "encode", counting)
    return seen


def test_a_translation_finetune_tokenizes_each_record_once_and_beam_searches_each_split_once(
        counted: dict[str, list[Any]], tokenized: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data report reads the training features (no second tokenization), and the final validation reuses the
    last evaluation's beam search when it scored the same weights; the test split is beam searched once."""
    searches: list[int] = []
    search = beam.beam_search

    def counting(model: Any, rows: Sequence[Any], *a: Any, **k: Any) -> Any:
        searches.append(len(rows))
        return search(model, rows, *a, **k)

    monkeypatch.setattr(beam, "beam_search", counting)
    train, val = _data(tmp_path, "translation")  # 64 training and 4 validation examples
    test = tmp_path / "test.jsonl"
    test.write_text(val.read_text() * 2)  # 8 test examples
    sets = [s for s in _sets("translate", train, val, T5_SMALL, 4) if "eval_every" not in s]
    sets += ["tasks.translate.train.eval_every=2", f'tasks.translate.data.test="{test}"', "tasks.translate.beam=1",
             "tasks.translate.max_new_tokens=4", "tasks.translate.eval_batch_size=3", "tasks.translate.train.keep_best=false"]
    outcome = ft.finetune(str(SPECS / "t5-tiny-translate.toml"), None, str(tmp_path / "run"), "translate", sets,
                          quiet=True, say=lambda _: None)
    assert sorted(searches) == sorted([3, 1] * 2 + [3, 3, 2])  # 2 evaluations of 4, the test split of 8; no final validation
    params = ft.load_task_run(tmp_path / "run", "cpu").setup.task.params
    rows = [json.loads(line) for path in (train, val, test) for line in path.read_text().splitlines()]
    sides = Counter(text for r in rows for text in (params.prefix + r[params.data.source], r[params.data.target]))
    assert Counter(t for t in tokenized if t in sides) == sides  # every side of every record: once
    assert outcome.evaluations[0].examples == 4 and outcome.evaluations[1].examples == 8


def test_the_translation_report_reads_the_encoded_features(tokenized: list[str]) -> None:
    """`describe` with the training features tokenizes nothing (but a side too long to have been encoded whole),
    and says exactly what it says tokenizing every record itself."""
    r = runner("t5-tiny-translate.toml", sets=[*TINY_T5, "tasks.translate.max_len=8"], kind="unigram")
    long = "word " * (HEAD_WINDOW // 4)  # longer than the window: its features hold only its head
    rows = records({"src": "Return the value", "tgt": "Gib den Wert zurück"}, {"src": long, "tgt": "lang"},
                   {"src": "Open the file and return a stream of the words", "tgt": "\u4e2d\u6587 Datei"})
    features = r.encode(rows, gold=True)
    tokenized.clear()
    lines = r.describe(rows, features)
    assert tokenized == [r.params.prefix + long]  # the one side no feature holds whole
    assert lines == r.describe(rows)
