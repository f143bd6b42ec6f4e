"""Token classification (BIO tagging, e.g. named entities).

Records hold a list of words and one tag per word. Each word is split into
sub-word tokens; the first sub-token carries the word's label and the others
are ignored by the loss (-100), so a prediction is read off each word's first
sub-token. Words cut off by truncation are predicted "O". Scored per entity
(type and boundaries must match) with conlleval's chunking.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from pydantic import Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.runtime.errors import UserError
from specc.runtime.batch import Batch, LossSums
from specc.runtime.objectives.base import cross_entropy_sum
from specc.runtime.tasks.base import Feature, HeadRunner, TaskData, TaskParams, TaskType, check_head, register

if TYPE_CHECKING:  # Record: annotations only (its module imports every file-format reader)
    from specc.runtime.data.formats import Record
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")

OUTSIDE = "O"


class TagFields(TaskData):
    tokens: str = Field(default="tokens", description="field of the list of words")
    tags: str = Field(default="tags", description="field of the tags, one per word (a CoNLL file: the name of its tag "
                      "column)")

    def reads(self) -> tuple[str, ...]:
        return (self.tokens, self.tags)

    def label_field(self) -> str | None:
        return self.tags


class TaggingParams(TaskParams):
    data: TagFields
    labels: list[str] | None = Field(default=None, min_length=2, description="the tag set, in the head's order "
                                     "(default: \"O\" then the training split's tags)")


class TaggingRunner(HeadRunner):
    kind = "tags"
    default_metrics = ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")
    label_set = True
    baseline_name = "most frequent tag of each word in training (unseen words: O)"

    @classmethod
    def check(cls, params: Any, graph: LayerGraph, at: Callable[[str], Span | None]) -> list[Diagnostic]:
        return check_head("token_classification", params, graph, at, rank=3, labels=params.labels, noun="tags",
                          reads="token classification reads label scores per token",
                          hint="apply a classification_head to the per-token hidden states")

    @classmethod
    def labels_from(cls, params: Any, records: Sequence[Record]) -> list[str] | None:
        if params.labels is not None:
            return list(params.labels)
        tags = {t for r in records for t in _words_and_tags(r, params.data, True)[1]}
        return [OUTSIDE] + sorted(tags - {OUTSIDE})

    def encode(self, records: Sequence[Record], gold: bool) -> list[Feature]:
        features = []
        for i, record in enumerate(records):
            budget = self.params.max_len - 2  # per record: a cut in one sentence must not shorten the next
            words, tags = _words_and_tags(record, self.params.data, gold)
            ids: list[int] = []
            first: list[int] = []  # token index of each word's first sub-token, or -1 when cut off
            labels: list[int] = []
            for w, word in enumerate(words):
                # one piece more than fits is enough to know the word is cut (a 10 MB "word" is not encoded whole)
                pieces = self.tok.encode_head(word, budget - len(ids) + 1) if word else []
                if not pieces or len(ids) + len(pieces) > budget:
                    first.append(-1)
                    if pieces:
                        budget = len(ids)  # once one word is cut, every later word is too
                    continue
                first.append(len(ids) + 1)  # +1 for [CLS]
                labels += [self._tag_id(record, tags[w]) if gold else -100] + [-100] * (len(pieces) - 1)
                ids += pieces
            s = self.specials
            tokens = [s.cls] + ids + [s.sep]
            inputs = self.token_inputs(tokens, [0] * len(tokens))
            features.append(Feature(i, inputs, [-100] + labels + [-100] if gold else None, first))
        return features

    def _tag_id(self, record: Record, tag: str) -> int:
        if tag not in self.label_id:
            raise UserError(f"{record.where}: unknown tag '{tag}' (tags: {', '.join(self.labels or [])})")
        return self.label_id[tag]

    def targets(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        width = max(len(f.target) for f in features)
        return {"tags": torch.tensor([f.target + [-100] * (width - len(f.target)) for f in features], dtype=torch.long)}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        return cross_entropy_sum(outputs[self.params.head], batch.targets["tags"], sums, "tag")

    def decode(self, records: Sequence[Record], features: Sequence[Feature], heads: Sequence[np.ndarray]
               ) -> list[dict[str, Any]]:
        assert self.labels is not None
        out = []
        for f, scores in zip(features, heads):
            best = scores.argmax(-1)
            out.append({"tags": [self.labels[int(best[t])] if t >= 0 else OUTSIDE for t in f.meta]})
        return out

    def value(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["tags"]

    def gold(self, record: Record) -> Any:
        return _words_and_tags(record, self.params.data, True)[1]

    def baseline(self, train: Sequence[Record], records: Sequence[Record]) -> list[Any]:
        seen: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for r in train:
            for word, tag in zip(*_words_and_tags(r, self.params.data, True)):
                seen[word][tag] += 1
        best = {w: min(c, key=lambda t: (-c[t], t)) for w, c in seen.items()}
        return [[best.get(w, OUTSIDE) for w in _words_and_tags(r, self.params.data, False)[0]] for r in records]


def _words_and_tags(record: Record, fields: TagFields, gold: bool) -> tuple[list[str], list[str]]:
    words = record.get(fields.tokens, list, "a list of words")
    if not all(isinstance(w, str) for w in words):
        raise UserError(f"{record.where}: field '{fields.tokens}' must be a list of strings")
    if not gold:
        return words, []
    tags = record.get(fields.tags, list, "a list of tags")
    if not all(isinstance(t, str) for t in tags):
        raise UserError(f"{record.where}: field '{fields.tags}' must be a list of strings")
    if len(tags) != len(words):
        raise UserError(f"{record.where}: {len(words)} words but {len(tags)} tags")
    return words, tags


register(TaskType("token_classification", TaggingParams, TaggingRunner,
                  "A label per word (BIO named entities); the first sub-token carries it; entity-level F1."))
