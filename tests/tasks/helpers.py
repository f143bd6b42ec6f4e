"""Helpers of the task tests: tiny settings, a small tokenizer, a runner for a spec's task."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

from specc.frontend import parse
from specc.schema import validate
from specc.runtime.config import TokenizerConfig
from specc.runtime.train.finetune import _runner, task_setup
from specc.runtime.data.labelled import Record
from specc.runtime.tasks.base import TaskRunner
from specc.runtime.data.tokenizer import TextTokenizer, _train

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
TINY = ["params.layers=1", "params.d_model=32", "params.heads=2"]
TINY_T5 = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.head_dim=16", "params.d_ff=64"]

CORPUS = [
    "The quick brown fox jumps over the lazy dog. Return the value of the named attribute of object.",
    "Raise ValueError if the string is empty. The os module provides a portable way of using the system.",
    "Open the file and return a stream. Read at most size bytes from the object and return them.",
    "Return a list of the words in the string, using sep as the delimiter string.",
] * 20


def tokenizer(kind: str = "wordpiece") -> TextTokenizer:
    """One small tokenizer per kind for the whole session (training twice may number tokens differently)."""
    return _tokenizer(kind)


@functools.lru_cache(maxsize=None)
def _tokenizer(kind: str) -> TextTokenizer:
    cfg = TokenizerConfig(kind=kind, vocab_size=300, lowercase=kind == "wordpiece", min_frequency=1,  # type: ignore[arg-type]
                          sentinels=0)
    return TextTokenizer(_train(cfg, CORPUS))


def runner(spec: str, task: str | None = None, sets: Sequence[str] = TINY, train: Sequence[Record] = (),
           kind: str = "wordpiece", labels: list[str] | None = None) -> TaskRunner:
    setup = task_setup(validate(parse(SPECS / spec, list(sets))), SPECS, task)
    return _runner(setup, tokenizer(kind), list(train), labels)


def records(*rows: dict[str, Any], where: str = "data.jsonl") -> list[Record]:
    return [Record(dict(r), f"{where}:{i + 1}") for i, r in enumerate(rows)]
