"""Fine-tuning does each piece of work once: every split is encoded once, one forward pass per validation batch
gives both the loss and the predictions (of tasks that read them off the head), and the trained model is scored
in place. The one-pass results equal the old two-pass path's exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytest
import torch

from helpers import SPECS, TINY, TINY_T5, runner
from specc.compiler import compile_model
from specc.runtime.batch import LossSums
from specc.runtime.data.demos import DEMOS
from specc.runtime.data.labelled import Record
from specc.runtime.tasks import TASKS
from specc.runtime.tasks.base import TaskRunner
from specc.runtime.train import finetune as ft
from specc.runtime.train import trainer as trainer_mod
from test_lora import SMALL, _data, _sets

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
             "tasks.sentiment.eval_batch_size=3"]
    ft.finetune(str(SPECS / "bert-tiny-sentiment.toml"), None, str(tmp_path / "run"), "sentiment", sets, quiet=True,
                say=lambda _: None)
    assert sorted(counted["encode"]) == [4, 8, 64]  # train, validation and test: once each
    assert counted["compiled"] == [1]  # the trained model is scored in place
    validation, testing = [3, 1], [3, 3, 2]  # batches of 3
    training = [4] * steps
    evaluations = (steps // every) * validation
    assert sorted(counted["forward"]) == sorted(training + evaluations + validation + testing)


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
    run = ft.load_task_run(tmp_path / "run", "cpu")
    assert run.ckpt.name == "step-00000002"
    again = ft.evaluate_records(run.runner, run.setup.task, run.model, ft.read_split(str(val), run.setup.task.params.data,
                                                                                        tmp_path).records, "validation")
    assert outcome.evaluations[0].metrics == again.metrics
