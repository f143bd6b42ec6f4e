"""Sequence classification (single text or a text pair; sentiment and NLI are instances) and regression.

Inputs are ``[CLS] a [SEP] (b [SEP])`` with segment ids when the model has a
`segments` input; the head reads one vector per sequence (e.g. `pool` +
`classification_head`) and gives (batch, labels) logits, or (batch, 1) for
regression (MSE loss, Pearson/Spearman).
"""

from __future__ import annotations

from abc import abstractmethod

import collections
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from pydantic import Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.runtime.errors import UserError
from specc.runtime.batch import Batch, LossSums
from specc.runtime.tasks.base import (
    Feature, HeadRunner, TaskData, TaskParams, TaskType, check_head, cls_sep, register, truncate_pair,
)

if TYPE_CHECKING:  # Record: annotations only (its module imports every file-format reader)
    from specc.runtime.data.formats import Record
    import numpy as np
    import torch
    import torch.nn.functional as F
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")
    F = lazy_import("torch.nn.functional")


class TextFields(TaskData):
    text: str = Field(default="text", description="field of the (first) text")
    text_pair: str | None = Field(default=None, description="field of the second text, for pairs (NLI, paraphrase)")
    label: str = Field(default="label", description="field of the label (a number for regression)")

    def reads(self) -> tuple[str, ...]:
        return (self.text, *((self.text_pair,) if self.text_pair else ()), self.label)

    def label_field(self) -> str | None:
        return self.label


class ClassificationParams(TaskParams):
    data: TextFields
    labels: list[str] | None = Field(default=None, min_length=2, description="the label set, in the head's order "
                                     "(default: the training split's labels, sorted)")


class RegressionParams(TaskParams):
    data: TextFields


class _Sequence(HeadRunner):
    """What classification and regression share: encoding one text or a pair."""

    def encode(self, records: Sequence[Record], gold: bool) -> list[Feature]:
        d = self.params.data
        pairs = d.text_pair is not None
        budget = self.params.max_len - (3 if pairs else 2)
        # neither side keeps more than `budget` tokens (longest-first cuts the same from the capped sides):
        # only a text's head is encoded, whatever its length
        firsts = self.tok.encode_heads([r.get(d.text, str) for r in records], budget)
        seconds = self.tok.encode_heads([r.get(d.text_pair, str) for r in records], budget) if pairs else [None] * len(records)
        features = []
        for i, (record, a, b) in enumerate(zip(records, firsts, seconds)):
            a, b = truncate_pair(a, b, budget)
            ids, segments = cls_sep(self.tok, a, b)
            features.append(Feature(i, self.token_inputs(ids, segments), self.gold_target(record) if gold else None))
        return features

    @abstractmethod
    def gold_target(self, record: Record) -> Any:
        ...

    @staticmethod
    def logits(heads: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack(heads).reshape(len(heads), -1)


class ClassificationRunner(_Sequence):
    kind = "labels"
    default_metrics = ("accuracy", "f1_macro", "mcc")
    label_set = True
    baseline_name = "majority class"

    @classmethod
    def check(cls, params: Any, graph: LayerGraph, at: Callable[[str], Span | None]) -> list[Diagnostic]:
        return check_head("classification", params, graph, at, rank=2, labels=params.labels,
                          reads="classification reads one vector of label scores per sequence",
                          hint="pool the sequence first (op = \"pool\"), then a classification_head")

    @classmethod
    def labels_from(cls, params: Any, records: Sequence[Record]) -> list[str] | None:
        if params.labels is not None:
            return list(params.labels)
        return sorted({_label_text(r, params.data.label) for r in records})
    def gold_target(self, record: Record) -> int:
        label = _label_text(record, self.params.data.label)
        if label not in self.label_id:
            raise UserError(f"{record.where}: unknown label '{label}' (labels: {', '.join(self.labels or [])})")
        return self.label_id[label]

    def targets(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        return {"label": torch.tensor([f.target for f in features], dtype=torch.long)}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        logits = outputs[self.params.head].float()  # (B, C)
        labels = batch.targets["label"]
        total = F.cross_entropy(logits, labels, reduction="sum")
        sums.add("cls", float(total.detach()), len(labels))
        return total / len(labels)

    def decode(self, records: Sequence[Record], features: Sequence[Feature], heads: Sequence[np.ndarray]
               ) -> list[dict[str, Any]]:
        assert self.labels is not None
        probs = torch.from_numpy(self.logits(heads)).softmax(-1).numpy()
        return [{"label": self.labels[int(p.argmax())], "probs": {label: round(float(x), 6) for label, x in zip(self.labels, p)}}
                for p in probs]

    def value(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["label"]

    def gold(self, record: Record) -> Any:
        return _label_text(record, self.params.data.label)

    def baseline(self, train: Sequence[Record], records: Sequence[Record]) -> list[Any]:
        counts = collections.Counter(self.gold(r) for r in train)
        majority = min(counts, key=lambda k: (-counts[k], k))
        return [majority] * len(records)


class RegressionRunner(_Sequence):
    kind = "values"
    default_metrics = ("pearson", "spearman", "mse")
    baseline_name = "training mean"

    @classmethod
    def check(cls, params: Any, graph: LayerGraph, at: Callable[[str], Span | None]) -> list[Diagnostic]:
        return check_head("regression", params, graph, at, rank=2, last=1, reads="regression reads one value per sequence",
                          hint="end the head with num_labels = 1 after a pool")
    def gold_target(self, record: Record) -> float:
        return self.gold(record)

    def targets(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        return {"value": torch.tensor([f.target for f in features], dtype=torch.float32)}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        pred = outputs[self.params.head].float().reshape(-1)  # (B,)
        total = F.mse_loss(pred, batch.targets["value"], reduction="sum")
        sums.add("mse", float(total.detach()), len(pred))
        return total / len(pred)

    def decode(self, records: Sequence[Record], features: Sequence[Feature], heads: Sequence[np.ndarray]
               ) -> list[dict[str, Any]]:
        return [{"value": round(float(v), 6)} for v in self.logits(heads)[:, 0]]

    def value(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["value"]

    def gold(self, record: Record) -> float:
        raw = record.get(self.params.data.label)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise UserError(f"{record.where}: field '{self.params.data.label}' must be a number, got {raw!r}") from None
        if not np.isfinite(value):
            raise UserError(f"{record.where}: field '{self.params.data.label}' must be a finite number, got {raw!r}")
        return value

    def baseline(self, train: Sequence[Record], records: Sequence[Record]) -> list[Any]:
        mean = sum(self.gold(r) for r in train) / len(train)
        return [mean] * len(records)


def _label_text(record: Record, field: str) -> str:
    value = record.get(field, (str, int), "a string or an integer")
    return str(value)


register(TaskType("classification", ClassificationParams, ClassificationRunner,
                  "Sequence classification of one text or a pair (sentiment, NLI): cross-entropy over labels."))
register(TaskType("regression", RegressionParams, RegressionRunner,
                  "One value per text or pair (similarity scores, ratings): MSE, Pearson/Spearman."))
