"""Task metrics: a registry of named metrics, each a function of predictions and gold answers.

Implemented here and tested against hand-computed values: accuracy, macro/micro
F1, Matthews correlation, Pearson/Spearman, MSE, entity-level precision/recall/F1
over BIO tags (CoNLL-2000 `conlleval` chunking), SQuAD v1.1 exact match and F1
with SQuAD's answer normalisation, and SQuAD v2.0's exact / F1 over all
questions, the answerable ones (HasAns_*) and the unanswerable ones (NoAns_*),
as the official evaluate-v2.0 script defines them (an unanswerable question's
gold is the empty answer). BLEU and chrF come from `sacrebleu`, whose
signature is reported with the score.
"""

from __future__ import annotations

import collections
import math
import re
import string
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from specc.registry import Registry
from specc.runtime.errors import UserError


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # what it compares: "labels", "values", "tags", "answers", "text"
    fn: Callable[[Sequence[Any], Sequence[Any]], float]
    higher_is_better: bool = True
    doc: str = ""


METRICS: Registry[Metric] = Registry("metric")


def register(name: str, kind: str, higher_is_better: bool = True, doc: str = "") -> Callable:
    """Decorator: register the function as metric `name` (a name taken twice fails at import)."""

    def add(fn: Callable[[Sequence[Any], Sequence[Any]], float]) -> Callable:
        METRICS.register(Metric(name, kind, fn, higher_is_better, doc))
        return fn

    return add


# -- labels (sequence classification) ------------------------------------------
@register("accuracy", "labels", doc="share of exactly right labels")
def accuracy(pred: Sequence[Any], gold: Sequence[Any]) -> float:
    _same_length(pred, gold)
    return sum(p == g for p, g in zip(pred, gold)) / len(gold)


def _per_class(pred: Sequence[Any], gold: Sequence[Any]) -> dict[Any, tuple[int, int, int]]:
    """Per class (in gold or pred): true positives, false positives, false negatives."""
    counts: dict[Any, list[int]] = {c: [0, 0, 0] for c in sorted(set(gold) | set(pred), key=str)}
    for p, g in zip(pred, gold):
        if p == g:
            counts[g][0] += 1
        else:
            counts[p][1] += 1
            counts[g][2] += 1
    return {c: (tp, fp, fn) for c, (tp, fp, fn) in counts.items()}


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


@register("f1_macro", "labels", doc="unweighted mean of per-class F1 (classes seen in gold or predictions)")
def f1_macro(pred: Sequence[Any], gold: Sequence[Any]) -> float:
    _same_length(pred, gold)
    per = _per_class(pred, gold)
    return sum(_f1(*c) for c in per.values()) / len(per)


@register("f1_micro", "labels", doc="F1 of pooled counts (equals accuracy for single-label classification)")
def f1_micro(pred: Sequence[Any], gold: Sequence[Any]) -> float:
    _same_length(pred, gold)
    tp, fp, fn = (sum(c[i] for c in _per_class(pred, gold).values()) for i in range(3))
    return _f1(tp, fp, fn)


@register("mcc", "labels", doc="Matthews correlation (multiclass R_K); 0 when undefined")
def mcc(pred: Sequence[Any], gold: Sequence[Any]) -> float:
    _same_length(pred, gold)
    n = len(gold)
    correct = sum(p == g for p, g in zip(pred, gold))
    t, p_ = collections.Counter(gold), collections.Counter(pred)
    classes = set(t) | set(p_)
    cov_tp = correct * n - sum(t[k] * p_[k] for k in classes)
    cov_pp = n * n - sum(v * v for v in p_.values())
    cov_tt = n * n - sum(v * v for v in t.values())
    if cov_pp == 0 or cov_tt == 0:
        return 0.0
    return cov_tp / math.sqrt(cov_pp * cov_tt)


# -- values (regression) ---------------------------------------------------------
@register("pearson", "values", doc="Pearson correlation; 0 when a side is constant")
def pearson(pred: Sequence[float], gold: Sequence[float]) -> float:
    _same_length(pred, gold)
    if min(pred) == max(pred) or min(gold) == max(gold):
        return 0.0  # a constant side: undefined, reported as 0 (not as rounding noise)
    n = len(gold)
    mp, mg = sum(pred) / n, sum(gold) / n
    cov = sum((p - mp) * (g - mg) for p, g in zip(pred, gold))
    vp = sum((p - mp) ** 2 for p in pred)
    vg = sum((g - mg) ** 2 for g in gold)
    if vp <= 0 or vg <= 0:
        return 0.0
    return cov / math.sqrt(vp * vg)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


@register("spearman", "values", doc="Spearman rank correlation (Pearson of average ranks)")
def spearman(pred: Sequence[float], gold: Sequence[float]) -> float:
    _same_length(pred, gold)
    return pearson(ranks(pred), ranks(gold))


@register("mse", "values", higher_is_better=False, doc="mean squared error")
def mse(pred: Sequence[float], gold: Sequence[float]) -> float:
    _same_length(pred, gold)
    return sum((p - g) ** 2 for p, g in zip(pred, gold)) / len(gold)


# -- tags (token classification) ---------------------------------------------------
def entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) chunks of a BIO (or BIOES) tag sequence, read as CoNLL's `conlleval` does:
    a chunk starts at B-X or S-X, at I-X or E-X after O or a finished chunk, or where the type changes."""
    found: set[tuple[str, int, int]] = set()
    start: int | None = None
    prev, prev_type = "O", ""
    for i, tag in enumerate([*tags, "O"]):
        cur, _, typ = tag.partition("-") if tag != "O" else ("O", "", "")
        if start is not None and _chunk_ends(prev, cur, prev_type, typ):
            found.add((prev_type, start, i - 1))
            start = None
        if _chunk_starts(prev, cur, prev_type, typ):
            start = i
        prev, prev_type = cur, typ
    return found


def _chunk_ends(prev: str, cur: str, prev_type: str, typ: str) -> bool:
    return prev in ("E", "S") or (prev in ("B", "I") and cur in ("B", "S", "O")) or (prev != "O" and prev_type != typ)


def _chunk_starts(prev: str, cur: str, prev_type: str, typ: str) -> bool:
    return cur in ("B", "S") or (prev in ("E", "S", "O") and cur in ("E", "I")) or (cur != "O" and prev_type != typ)


def _entity_counts(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> tuple[int, int, int]:
    _same_length(pred, gold)
    tp = n_pred = n_gold = 0
    for p, g in zip(pred, gold):
        if len(p) != len(g):
            raise ValueError(f"tag sequences differ in length: {len(p)} vs {len(g)}")
        pe, ge = entities(p), entities(g)
        tp, n_pred, n_gold = tp + len(pe & ge), n_pred + len(pe), n_gold + len(ge)
    return tp, n_pred, n_gold


@register("entity_precision", "tags", doc="exactly matching entities / predicted entities")
def entity_precision(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    tp, n_pred, _ = _entity_counts(pred, gold)
    return tp / n_pred if n_pred else 0.0


@register("entity_recall", "tags", doc="exactly matching entities / gold entities")
def entity_recall(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    tp, _, n_gold = _entity_counts(pred, gold)
    return tp / n_gold if n_gold else 0.0


@register("entity_f1", "tags", doc="F1 of exactly matching entities (type and boundaries), micro over the corpus")
def entity_f1(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    tp, n_pred, n_gold = _entity_counts(pred, gold)
    return 2 * tp / (n_pred + n_gold) if tp else 0.0


@register("token_accuracy", "tags", doc="share of words with the right tag")
def token_accuracy(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    _same_length(pred, gold)
    pairs = [(a, b) for p, g in zip(pred, gold) for a, b in zip(p, g)]
    return sum(a == b for a, b in pairs) / max(len(pairs), 1)


# -- answers (extractive QA, SQuAD v1.1) -------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lower case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _token_f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


@register("exact_match", "answers", doc="SQuAD EM (0-100): normalised prediction equals a gold answer")
def exact_match(pred: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    _same_length(pred, gold)
    # an unanswerable question (no gold answer) is matched by the empty answer
    return 100.0 * sum(max(normalize_answer(p) == normalize_answer(g) for g in gs or [""]) for p, gs in zip(pred, gold)) / len(gold)


@register("f1", "answers", doc="SQuAD F1 (0-100): token overlap with the best gold answer (v2.0's definition: "
                                "an unanswerable question scores 1 for the empty answer; v1.1's on answerable ones)")
def squad_f1(pred: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    return _mean([f for _, f in _v2_scores(pred, gold)])


def v2_golds(gold: Sequence[str]) -> list[str]:
    """evaluate-v2.0: gold answers that normalise to nothing are dropped; none left means 'no answer' ('')."""
    return [g for g in gold if normalize_answer(g)] or [""]


def v2_f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:  # the empty answer matches only the empty answer
        return float(p == g)
    return _token_f1(pred, gold)


def _v2_scores(pred: Sequence[str], gold: Sequence[Sequence[str]], has_answer: bool | None = None) -> list[tuple[float, float]]:
    """(exact, F1) of each question (of the answerable or unanswerable ones only, when `has_answer` is given)."""
    _same_length(pred, gold)
    out = []
    for p, gs in zip(pred, gold):
        if has_answer is not None and bool(gs) != has_answer:
            continue
        golds = v2_golds(gs)
        out.append((max(float(normalize_answer(p) == normalize_answer(g)) for g in golds), max(v2_f1(p, g) for g in golds)))
    return out


def _mean(values: Sequence[float]) -> float:
    """100 x the mean; NaN for no questions (a split without unanswerable questions has no NoAns score)."""
    return 100.0 * sum(values) / len(values) if values else math.nan


@register("exact", "answers", doc="SQuAD v2.0 exact (0-100): as exact_match, an unanswerable question right when the answer is empty")
def squad_exact(pred: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    return _mean([e for e, _ in _v2_scores(pred, gold)])


@register("HasAns_exact", "answers", doc="SQuAD v2.0 exact over the answerable questions")
def has_ans_exact(pred: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    return _mean([e for e, _ in _v2_scores(pred, gold, True)])


@register("HasAns_f1", "answers", doc="SQuAD v2.0 F1 over the answerable questions")
def has_ans_f1(pred: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    return _mean([f for _, f in _v2_scores(pred, gold, True)])


@register("NoAns_exact", "answers", doc="SQuAD v2.0 exact over the unanswerable questions (share answered with nothing)")
def no_ans_exact(pred: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    return _mean([e for e, _ in _v2_scores(pred, gold, False)])


@register("NoAns_f1", "answers", doc="SQuAD v2.0 F1 over the unanswerable questions (equal to NoAns_exact)")
def no_ans_f1(pred: Sequence[str], gold: Sequence[Sequence[str]]) -> float:
    return _mean([f for _, f in _v2_scores(pred, gold, False)])


def best_no_answer_threshold(scores: Sequence[float], answered: Sequence[bool], has_answer: Sequence[bool],
                             na_diff: Sequence[float]) -> float:
    """evaluate-v2.0's find_best_thresh: the no-answer threshold that maximises the summed score when a question is
    answered with nothing if its na_diff exceeds it. `scores` are each question's score with its best span,
    `answered` whether that span is non-empty, `na_diff` how much more the model believes in no answer."""
    current = best = float(sum(1 for h in has_answer if not h))  # everything answered with nothing
    threshold = 0.0
    for k in sorted(range(len(na_diff)), key=lambda k: na_diff[k]):  # answer the surest questions first
        current += scores[k] if has_answer[k] else (-1.0 if answered[k] else 0.0)
        if current > best:
            best, threshold = current, na_diff[k]
    return threshold


# -- text (translation) --------------------------------------------------------------
def _sacrebleu() -> Any:
    try:
        from sacrebleu import metrics
    except ModuleNotFoundError:
        raise UserError("BLEU and chrF need sacrebleu: pip install 'specc[mt]' (or pip install sacrebleu)") from None
    return metrics


def sacrebleu_score(name: str, pred: Sequence[str], gold: Sequence[str]) -> tuple[float, str]:
    """Corpus BLEU or chrF of `pred` against one reference each, and sacrebleu's signature."""
    _same_length(pred, gold)
    metrics = _sacrebleu()
    scorer = metrics.BLEU() if name == "bleu" else metrics.CHRF()
    result = scorer.corpus_score(list(pred), [list(gold)])
    return float(result.score), str(scorer.get_signature())


@register("bleu", "text", doc="corpus BLEU (sacrebleu, 13a tokenisation)")
def bleu(pred: Sequence[str], gold: Sequence[str]) -> float:
    return sacrebleu_score("bleu", pred, gold)[0]


@register("chrf", "text", doc="corpus chrF (sacrebleu)")
def chrf(pred: Sequence[str], gold: Sequence[str]) -> float:
    return sacrebleu_score("chrf", pred, gold)[0]


def _same_length(pred: Sequence[Any], gold: Sequence[Any]) -> None:
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} gold answers")
    if not gold:
        raise ValueError("no gold answers to score")
