"""Slow: the built-in demos at their declared settings, and what pretraining gives.

`specc train specs/bert-tiny.toml`, then the sentiment demo fine-tuned from
that run and, with the same budget and tokenizer, from random initialisation
(`--random-init`): the pretrained start must score higher. Every BERT demo, and
decoder-only translation from `specc train specs/gpt-tiny.toml`, must end well
above its trivial baseline (the margins are about half of what docs/finetuning.md
reports). Run with --runslow (about 8 minutes on a quiet 2-core CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SPECS
from specc.runtime.train.finetune import finetune
from specc.runtime.train.jobs import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bert_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bert-tiny") / "run"
    train(str(SPECS / "bert-tiny.toml"), str(out), None, quiet=True, say=lambda s: None)
    return out


def _finetune(spec: str, task: str, source: Path, out: Path, random_init: bool) -> dict[str, float]:
    outcome = finetune(str(SPECS / spec), str(source), str(out), task, random_init=random_init, quiet=True, say=lambda s: None)
    return outcome.evaluations[0].metrics


def test_pretraining_helps_sentiment(bert_tiny: Path, tmp_path: Path) -> None:
    """Same spec, budget and tokenizer; measured: 1.000 vs 0.880 validation accuracy (majority class 0.5125)."""
    pre = _finetune("bert-tiny-sentiment.toml", "sentiment", bert_tiny, tmp_path / "pre", False)
    scratch = _finetune("bert-tiny-sentiment.toml", "sentiment", bert_tiny, tmp_path / "scratch", True)
    assert pre["accuracy"] > scratch["accuracy"] + 0.05, (pre, scratch)


@pytest.fixture(scope="module")
def gpt_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpt-tiny") / "run"
    train(str(SPECS / "gpt-tiny.toml"), str(out), None, quiet=True, say=lambda s: None)
    return out


def _beats_baseline(spec: str, task: str, source: Path, out: Path, metric: str, margin: float) -> None:
    outcome = finetune(str(SPECS / spec), str(source), str(out), task, quiet=True, say=lambda s: None)
    val = outcome.evaluations[0]
    assert val.baseline is not None and val.metrics[metric] > val.baseline[metric] + margin, (val.metrics, val.baseline)


@pytest.mark.parametrize("spec, task, metric, margin", [  # measured validation figure vs baseline in the comments
    ("bert-tiny-sentiment.toml", "sentiment", "accuracy", 0.3),  # 1.000 vs 0.513
    ("bert-tiny-tasks.toml", "pairs", "accuracy", 0.3),  # 0.955 vs 0.493
    ("bert-tiny-tasks.toml", "rating", "pearson", 0.5),  # 0.982 vs 0
    ("bert-tiny-tasks.toml", "acceptability", "mcc", 0.15),  # 0.390 vs 0
    ("bert-tiny-ner.toml", "ner", "entity_f1", 0.15),  # 0.579 vs 0.286
    ("bert-tiny-qa.toml", "qa", "f1", 20.0),  # 49.0 vs 5.3
])
def test_demo_from_pretrained_bert_beats_its_baseline(bert_tiny: Path, tmp_path: Path, spec: str, task: str, metric: str,
                                                      margin: float) -> None:
    _beats_baseline(spec, task, bert_tiny, tmp_path / "run", metric, margin)


def test_decoder_only_translation_from_pretrained_gpt_beats_copying(gpt_tiny: Path, tmp_path: Path) -> None:
    _beats_baseline("gpt-tiny-translate.toml", "translate", gpt_tiny, tmp_path / "run", "bleu", 40.0)  # 97.5 vs 0.06
