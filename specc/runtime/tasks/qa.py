"""Extractive question answering, SQuAD v1.1 and v2.0 style.

Each window is ``[CLS] question [SEP] context-piece [SEP]``. A context longer
than the window is cut into overlapping pieces whose starts are `doc_stride`
tokens apart (BERT's doc_stride). The head gives a start and an end score per
token; a window whose piece does not hold the whole answer is trained to
point at [CLS]. At prediction, the best span over all windows of a question
(start ≤ end, at most `max_answer_len` tokens, inside the context) is mapped
back to the context's characters through the tokenizer's offsets.

With ``no_answer = true`` (SQuAD v2.0) a question may have no answer: every
window of it is trained to point at [CLS]. Its no-answer score is the lowest
[CLS] score (start + end) over its windows, and the question is answered with
nothing when that score beats the best span's by more than a threshold tuned
on the validation split as the official evaluate-v2.0 script does (the
threshold that maximises F1), kept in the checkpoint's task.json.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from pydantic import Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.runtime.errors import UserError
from specc.runtime.tasks.metrics import v2_f1, v2_golds, best_no_answer_threshold
from specc.runtime.batch import Batch, LossSums
from specc.runtime.tasks.base import Feature, HeadRunner, TaskData, TaskParams, TaskType, check_head, register

if TYPE_CHECKING:  # Record: annotations only (its module imports every file-format reader)
    from specc.runtime.data.formats import Record
    import numpy as np
    import torch
    import torch.nn.functional as F
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")
    F = lazy_import("torch.nn.functional")


class QAFields(TaskData):
    question: str = Field(default="question", description="field of the question")
    context: str = Field(default="context", description="field of the passage the answer is in")
    answers: str = Field(default="answers", description='field of the answers: a list of {"text", "answer_start"}, or '
                         '`datasets`\' {"text": [...], "answer_start": [...]}')

    def reads(self) -> tuple[str, ...]:
        return (self.question, self.context, self.answers)


class QAParams(TaskParams):
    data: QAFields
    max_len: int = Field(default=192, gt=16, description="tokens per window (question and context)")
    doc_stride: int = Field(default=64, gt=0, description="tokens between the starts of consecutive windows")
    max_query_len: int = Field(default=48, gt=0, description="question tokens kept")
    max_answer_len: int = Field(default=20, gt=0, description="longest predicted answer, in tokens")
    n_best: int = Field(default=20, gt=0, description="start and end candidates per window")
    no_answer: bool = Field(default=False, description="SQuAD v2.0: questions may be unanswerable (an empty answer list)")


class Window:
    """Where a window's context tokens sit: token position → character span in the context."""

    def __init__(self, offsets: dict[int, tuple[int, int]]):
        self.offsets = offsets


V2_METRICS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")


class QARunner(HeadRunner):
    kind = "answers"
    default_metrics = ("exact_match", "f1")
    baseline_name = "random span of the context (seeded)"
    threshold = 0.0  # no-answer threshold (SQuAD v2.0): tuned by `calibrate`

    @classmethod
    def metrics_for(cls, params: Any) -> tuple[str, ...]:
        return V2_METRICS if params.no_answer else cls.default_metrics

    @classmethod
    def check(cls, params: Any, graph: LayerGraph, at: Callable[[str], Span | None]) -> list[Diagnostic]:
        out = check_head("extractive_qa", params, graph, at, rank=3, last=2,
                         reads="extractive QA reads a start and an end score per token",
                         hint="use op = \"span_head\" on the hidden states")
        if params.doc_stride > params.max_len - params.max_query_len - 3:
            out.append(Diagnostic("E074", f"doc_stride {params.doc_stride} is longer than a window's context part "
                                  f"({params.max_len - params.max_query_len - 3} tokens); windows would skip text", at("doc_stride")))
        return out

    def encode(self, records: Sequence[Record], gold: bool) -> list[Feature]:
        p, s = self.params, self.specials
        features = []
        for i, record in enumerate(records):
            question, context = record.get(p.data.question, str), record.get(p.data.context, str)
            q = self.tok.encode(question)[: p.max_query_len]
            enc = self.tok.tok.encode(context, add_special_tokens=False)
            ids, offsets = enc.ids, enc.offsets
            answer = _first_answer(record, p.data.answers, context, p.no_answer) if gold else None
            room = p.max_len - len(q) - 3
            for st in window_starts(len(ids), room, p.doc_stride):
                piece = ids[st : st + room]
                head = [s.cls] + q + [s.sep]
                tokens = head + piece + [s.sep]
                segments = [0] * len(head) + [1] * (len(piece) + 1)
                where = {len(head) + k: offsets[st + k] for k in range(len(piece))}
                target = _label(answer, where) if gold else None
                features.append(Feature(i, self.token_inputs(tokens, segments), target, Window(where)))
        return features

    def targets(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        return {"span": torch.tensor([f.target for f in features], dtype=torch.long)}  # (B, 2)

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        logits = outputs[self.params.head].float()  # (B, T, 2)
        span = batch.targets["span"]
        total = (F.cross_entropy(logits[..., 0], span[:, 0], reduction="sum") +
                 F.cross_entropy(logits[..., 1], span[:, 1], reduction="sum")) / 2
        sums.add("span", float(total.detach()), len(span))
        return total / len(span)

    def decode(self, records: Sequence[Record], features: Sequence[Feature], heads: Sequence[np.ndarray]
               ) -> list[dict[str, Any]]:
        best: list[tuple[float, int, int]] = [(-np.inf, 0, 0)] * len(records)
        null = [np.inf] * len(records)  # the lowest [CLS] score over a question's windows (BERT's SQuAD 2.0 rule)
        for f, scores in zip(features, heads):
            found = best_span(scores[:, 0], scores[:, 1], f.meta.offsets, self.params.max_answer_len, self.params.n_best)
            if found is not None and found[0] > best[f.example][0]:
                best[f.example] = found
            null[f.example] = min(null[f.example], float(scores[0, 0] + scores[0, 1]))
        out = []
        for record, (score, a, b), none in zip(records, best, null):
            context = record.get(self.params.data.context, str)
            pred = {"answer": context[a:b], "start": a, "score": round(float(score), 4) if np.isfinite(score) else None}
            if self.params.no_answer:
                diff = none - score if np.isfinite(score) else np.inf  # how much more the model believes in no answer
                pred["span"] = pred["answer"]  # the best span, whether or not it is the answer
                pred["no_answer_diff"] = round(float(diff), 4) if np.isfinite(diff) else None
                pred["answer"] = "" if self._unanswered(pred) else pred["span"]
            out.append(pred)
        return out

    def _unanswered(self, prediction: Mapping[str, Any]) -> bool:
        diff = prediction.get("no_answer_diff")
        return diff is None or diff > self.threshold

    def calibrate(self, predictions: Sequence[dict[str, Any]], records: Sequence[Record]) -> None:
        """The no-answer threshold that maximises F1 on these (validation) predictions, as evaluate-v2.0 finds it."""
        if not self.params.no_answer:
            return
        spans = [str(p["span"]) for p in predictions]
        golds = [self.gold(r) for r in records]
        f1 = [max(v2_f1(s, g) for g in v2_golds(gs)) for s, gs in zip(spans, golds)]
        diffs = [p["no_answer_diff"] if p["no_answer_diff"] is not None else np.inf for p in predictions]
        self.threshold = best_no_answer_threshold(f1, [bool(s) for s in spans], [bool(g) for g in golds], diffs)
        for p, s in zip(predictions, spans):
            p["answer"] = "" if self._unanswered(p) else s

    def state(self) -> dict[str, Any]:
        return {"no_answer_threshold": self.threshold} if self.params.no_answer else {}

    def restore(self, state: Mapping[str, Any]) -> None:
        value = state.get("no_answer_threshold")
        if isinstance(value, (int, float)):
            self.threshold = float(value)

    def value(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["answer"]

    def gold(self, record: Record) -> Any:
        context = record.get(self.params.data.context, str)
        return [a["text"] for a in _answers(record, self.params.data.answers, context)]

    def baseline(self, train: Sequence[Record], records: Sequence[Record]) -> list[Any]:
        """A random span of up to `max_answer_len` words of the context, seeded per question."""
        out = []
        for i, record in enumerate(records):
            words = record.get(self.params.data.context, str).split() or [""]
            rng = random.Random(i)
            start = rng.randrange(len(words))
            out.append(" ".join(words[start : start + rng.randint(1, min(self.params.max_answer_len, 5))]))
        return out


def window_starts(length: int, room: int, stride: int) -> list[int]:
    """First token of each window: every `stride` tokens until a window reaches the end."""
    starts = [0]
    while starts[-1] + room < length:
        starts.append(starts[-1] + stride)
    return starts


def best_span(start: np.ndarray, end: np.ndarray, offsets: Mapping[int, tuple[int, int]], max_len: int,
              n_best: int) -> tuple[float, int, int] | None:
    """(score, first char, end char) of the best context span: start ≤ end, at most `max_len` tokens."""
    inside = np.array(sorted(offsets))
    if len(inside) == 0:
        return None
    starts = inside[np.argsort(-start[inside], kind="stable")[:n_best]]
    ends = inside[np.argsort(-end[inside], kind="stable")[:n_best]]
    best: tuple[float, int, int] | None = None
    for a in starts:
        for b in ends:
            if b < a or b - a + 1 > max_len:
                continue
            score = float(start[a] + end[b])
            if best is None or score > best[0]:
                best = (score, offsets[int(a)][0], offsets[int(b)][1])
    return best


def _label(answer: tuple[int, int] | None, where: Mapping[int, tuple[int, int]]) -> tuple[int, int]:
    """Token positions of the answer's first and last token in this window, or (0, 0) ([CLS]) if it is not inside."""
    if answer is None:
        return (0, 0)
    a, b = answer
    first = [t for t, (s, e) in where.items() if e > a and s < b]
    if not first:
        return (0, 0)
    lo, hi = min(first), max(first)
    if where[lo][0] > a or where[hi][1] < b:  # the window cuts the answer
        return (0, 0)
    return (lo, hi)


def _answers(record: Record, field: str, context: str) -> list[dict[str, Any]]:
    answers = record.get(field, (list, dict), "a list of answers")
    if isinstance(answers, dict):  # `datasets`' shape: {"text": [...], "answer_start": [...]}, one entry per answer
        texts, starts = answers.get("text"), answers.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise UserError(f"{record.where}: field '{field}' must be a list of answers, or an object of two equally "
                            f"long lists 'text' and 'answer_start'")
        answers = [{"text": t, "answer_start": a} for t, a in zip(texts, starts)]
    for k, ans in enumerate(answers):
        if not isinstance(ans, dict) or not isinstance(ans.get("text"), str) or not isinstance(ans.get("answer_start"), int):
            raise UserError(f"{record.where}: answer {k} must be an object with 'text' and an integer 'answer_start'")
        start, text = ans["answer_start"], ans["text"]
        if context[start : start + len(text)] != text:
            raise UserError(f"{record.where}: answer {k} '{text[:40]}' is not at character {start} of the context "
                            f"(found '{context[start : start + len(text)][:40]}')")
    return answers


def _first_answer(record: Record, field: str, context: str, no_answer: bool = False) -> tuple[int, int] | None:
    """The first answer's characters; None for an unanswerable question (allowed with `no_answer`)."""
    answers = _answers(record, field, context)
    if not answers:
        if no_answer:
            return None
        raise UserError(f"{record.where}: a training question needs at least one answer "
                        f"(SQuAD v2.0's unanswerable questions: set no_answer = true)")
    return answers[0]["answer_start"], answers[0]["answer_start"] + len(answers[0]["text"])


register(TaskType("extractive_qa", QAParams, QARunner,
                  "SQuAD v1.1 / v2.0 span extraction over windows of long contexts; Exact Match and F1 "
                  "(v2.0: no-answer via [CLS], threshold tuned on validation)."))
