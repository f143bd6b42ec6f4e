"""SQuAD v2.0: specc's metrics and its no-answer threshold equal the official evaluate-v2.0 script's.

`Official` below is an independent reimplementation of the official script's
definitions (normalize_answer, compute_exact, compute_f1, get_raw_scores,
apply_no_ans_threshold, make_eval_dict, find_best_thresh), written from the
script as published and kept apart from specc's code, so a mistake on either
side shows as a difference on the fixture.
"""

from __future__ import annotations

import collections
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest

from helpers import runner
from specc.runtime.tasks import metrics as M
from specc.runtime.data.formats import read_table

QA_TINY = ["params.layers=1", "params.d_model=32", "params.heads=2", "tasks.qa.no_answer=true"]


class Official:
    """evaluate-v2.0.py, function by function."""

    @staticmethod
    def normalize_answer(s: str) -> str:
        def remove_articles(text: str) -> str:
            return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

        def white_space_fix(text: str) -> str:
            return " ".join(text.split())

        def remove_punc(text: str) -> str:
            exclude = set(string.punctuation)
            return "".join(ch for ch in text if ch not in exclude)

        return white_space_fix(remove_articles(remove_punc(s.lower())))

    @classmethod
    def get_tokens(cls, s: str) -> list[str]:
        return cls.normalize_answer(s).split() if s else []

    @classmethod
    def compute_exact(cls, a_gold: str, a_pred: str) -> int:
        return int(cls.normalize_answer(a_gold) == cls.normalize_answer(a_pred))

    @classmethod
    def compute_f1(cls, a_gold: str, a_pred: str) -> float:
        gold_toks, pred_toks = cls.get_tokens(a_gold), cls.get_tokens(a_pred)
        common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
        num_same = sum(common.values())
        if len(gold_toks) == 0 or len(pred_toks) == 0:
            return int(gold_toks == pred_toks)
        if num_same == 0:
            return 0
        precision, recall = num_same / len(pred_toks), num_same / len(gold_toks)
        return (2 * precision * recall) / (precision + recall)

    @classmethod
    def has_ans(cls, dataset: list[Any]) -> dict[str, bool]:
        return {qa["id"]: bool(qa["answers"]) for article in dataset for p in article["paragraphs"] for qa in p["qas"]}

    @classmethod
    def get_raw_scores(cls, dataset: list[Any], preds: dict[str, str]) -> tuple[dict[str, int], dict[str, float]]:
        exact_scores, f1_scores = {}, {}
        for article in dataset:
            for p in article["paragraphs"]:
                for qa in p["qas"]:
                    gold_answers = [a["text"] for a in qa["answers"] if cls.normalize_answer(a["text"])] or [""]
                    a_pred = preds[qa["id"]]
                    exact_scores[qa["id"]] = max(cls.compute_exact(a, a_pred) for a in gold_answers)
                    f1_scores[qa["id"]] = max(cls.compute_f1(a, a_pred) for a in gold_answers)
        return exact_scores, f1_scores

    @staticmethod
    def apply_no_ans_threshold(scores: dict[str, float], na_probs: dict[str, float], has_ans: dict[str, bool],
                               thresh: float) -> dict[str, float]:
        return {qid: float(not has_ans[qid]) if na_probs[qid] > thresh else s for qid, s in scores.items()}

    @staticmethod
    def make_eval_dict(exact: dict[str, float], f1: dict[str, float], qids: list[str] | None = None) -> dict[str, float]:
        qids = qids or list(exact)
        return {"exact": 100.0 * sum(exact[k] for k in qids) / len(qids), "f1": 100.0 * sum(f1[k] for k in qids) / len(qids)}

    @staticmethod
    def find_best_thresh(preds: dict[str, str], scores: dict[str, float], na_probs: dict[str, float],
                         has_ans: dict[str, bool]) -> tuple[float, float]:
        cur_score = best_score = sum(1 for k in has_ans if not has_ans[k])
        best_thresh = 0.0
        for qid in sorted(na_probs, key=lambda k: na_probs[k]):
            if qid not in scores:
                continue
            if has_ans[qid]:
                diff = scores[qid]
            else:
                diff = -1 if preds[qid] else 0
            cur_score += diff
            if cur_score > best_score:
                best_score, best_thresh = cur_score, na_probs[qid]
        return 100.0 * best_score / len(scores), best_thresh

    @classmethod
    def evaluate(cls, dataset: list[Any], preds: dict[str, str], na_probs: dict[str, float], thresh: float) -> dict[str, float]:
        has_ans = cls.has_ans(dataset)
        exact_raw, f1_raw = cls.get_raw_scores(dataset, preds)
        exact = cls.apply_no_ans_threshold(exact_raw, na_probs, has_ans, thresh)  # type: ignore[arg-type]
        f1 = cls.apply_no_ans_threshold(f1_raw, na_probs, has_ans, thresh)
        out = cls.make_eval_dict(exact, f1)
        for name, want in (("HasAns", True), ("NoAns", False)):
            part = cls.make_eval_dict(exact, f1, [k for k, v in has_ans.items() if v == want])
            out.update({f"{name}_{k}": v for k, v in part.items()})
        out["best_f1"], out["best_f1_thresh"] = cls.find_best_thresh(preds, f1_raw, na_probs, has_ans)
        return out


CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in France. "
           "They were descended from Norse raiders and pirates from Denmark, Iceland and Norway.")

# (id, question, gold answers (text, start), the model's best span, its no-answer score minus the span's)
QUESTIONS = [
    ("q1", "In what country is Normandy located?", ["France", "France."], "France", -3.0),
    ("q2", "When were the Normans in Normandy?", ["10th and 11th centuries", "in the 10th and 11th centuries"], "the 10th", -1.5),
    ("q3", "From which countries did the Norse originate?", ["Denmark, Iceland and Norway"], "Norway", 0.4),
    ("q4", "Who gave their name to Normandy in the 1000's and 1100's", [], "The Normans", 0.2),
    ("q5", "What is France a region of?", [], "Normandy", 2.5),
    ("q6", "Who did King Charles III swear fealty to?", [], "Norse raiders", -0.5),
    ("q7", "What century did the Normans first gain their separate identity?", ["10th"], "11th centuries", 1.0),
    ("q8", "Who were the Norse descended from?", [], "", 3.0),
    ("q9", "What were the raiders called?", ["pirates", "Norse raiders and pirates"], "raiders and pirates", -0.2),
]


def squad_v2_file(tmp_path: Path) -> Path:
    qas = []
    for qid, question, golds, _, _ in QUESTIONS:
        answers = [{"text": g, "answer_start": CONTEXT.index(g)} for g in golds]
        qa: dict[str, Any] = {"id": qid, "question": question, "answers": answers, "is_impossible": not golds}
        if not golds:
            qa["plausible_answers"] = [{"text": "Normans", "answer_start": CONTEXT.index("Normans")}]
        qas.append(qa)
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return path


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.3, 1.0])
def test_metrics_equal_the_official_script_at_any_threshold(tmp_path: Path, threshold: float) -> None:
    path = squad_v2_file(tmp_path)
    dataset = json.loads(path.read_text())["data"]
    spans = {q[0]: q[3] for q in QUESTIONS}
    na = {q[0]: q[4] for q in QUESTIONS}
    official = Official.evaluate(dataset, spans, na, threshold)
    records = read_table(path).records
    final = ["" if na[r.fields["id"]] > threshold else spans[r.fields["id"]] for r in records]
    golds = [[a["text"] for a in r.fields["answers"]] for r in records]
    for name in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
        assert M.METRICS[name].fn(final, golds) == pytest.approx(official[name], abs=1e-9), name
    if threshold == 0.3:  # the fixture exercises both sides: some answered wrongly, some abstained wrongly
        assert 0 < official["HasAns_f1"] < 100 and 0 < official["NoAns_exact"] < 100


def test_the_tuned_threshold_is_the_official_best_f1_threshold(tmp_path: Path) -> None:
    path = squad_v2_file(tmp_path)
    dataset = json.loads(path.read_text())["data"]
    spans = {q[0]: q[3] for q in QUESTIONS}
    na = {q[0]: q[4] for q in QUESTIONS}
    official = Official.evaluate(dataset, spans, na, 1.0)
    records = read_table(path).records
    qa = runner("bert-tiny-qa.toml", "qa", QA_TINY)
    predictions = [{"answer": spans[r.fields["id"]], "span": spans[r.fields["id"]], "start": 0, "score": 1.0,
                    "no_answer_diff": na[r.fields["id"]]} for r in records]
    qa.calibrate(predictions, records)
    assert qa.threshold == official["best_f1_thresh"] and qa.state() == {"no_answer_threshold": official["best_f1_thresh"]}
    golds = [qa.gold(r) for r in records]
    tuned = M.squad_f1([qa.value(p) for p in predictions], golds)
    assert tuned == pytest.approx(official["best_f1"], abs=1e-9)
    assert official["best_f1"] > Official.evaluate(dataset, spans, na, 10.0)["f1"]  # tuning beats never abstaining


def test_an_unanswerable_training_question_points_at_cls_and_v1_refuses_it(tmp_path: Path) -> None:
    records = read_table(squad_v2_file(tmp_path)).records
    qa = runner("bert-tiny-qa.toml", "qa", QA_TINY)
    features = qa.encode(records, gold=True)
    by_id = {records[f.example].fields["id"]: f for f in features}
    assert by_id["q5"].target == (0, 0) and by_id["q1"].target != (0, 0)
    v1 = runner("bert-tiny-qa.toml", "qa", QA_TINY[:-1])
    with pytest.raises(Exception, match=r"qas\[3\]: a training question needs at least one answer \(SQuAD v2.0's "
                                        r"unanswerable questions: set no_answer = true\)"):
        v1.encode(records, gold=True)
    assert qa.metrics_for(qa.params)[:2] == ("exact", "f1")
