"""Every task metric against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from specc.runtime.tasks import metrics as M


def test_accuracy_and_f1() -> None:
    pred = ["a", "a", "b", "b", "c", "a"]
    gold = ["a", "b", "b", "b", "c", "c"]
    assert M.accuracy(pred, gold) == pytest.approx(4 / 6)
    # a: tp 1, fp 2, fn 0 → F1 2/4; b: tp 2, fp 0, fn 1 → 4/5; c: tp 1, fp 0, fn 1 → 2/3
    assert M.f1_macro(pred, gold) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # pooled: tp 4, fp 2, fn 2 → 8/12
    assert M.f1_micro(pred, gold) == pytest.approx(8 / 12)


def test_matthews_correlation_binary_and_multiclass() -> None:
    # binary: tp 2, tn 1, fp 1, fn 0 → (2*1 - 1*0) / sqrt(3*2*2*1) = 2 / sqrt(12)
    assert M.mcc([1, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(2 / math.sqrt(12))
    assert M.mcc([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert M.mcc([0, 1, 0], [1, 0, 1]) == pytest.approx(-1.0)
    assert M.mcc(["x"] * 4, ["x", "y", "x", "y"]) == 0.0  # constant prediction: undefined, reported as 0
    # 3 classes: n 6, correct 4; t = (a 1, b 3, c 2), p = (a 3, b 2, c 1)
    # cov_tp = 4*6 - (1*3 + 3*2 + 2*1) = 13; cov_pp = 36 - 14 = 22; cov_tt = 36 - 14 = 22 → 13/22
    assert M.mcc(["a", "a", "b", "b", "c", "a"], ["a", "b", "b", "b", "c", "c"]) == pytest.approx(13 / 22)


def test_pearson_spearman_mse() -> None:
    # x = 1,2,3, y = 1,2,4: means 2 and 7/3; cov 3; var 2 and 14/3 → 3 / sqrt(28/3)
    assert M.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(28 / 3))
    assert M.pearson([1, 1, 1], [1, 2, 3]) == 0.0
    assert M.ranks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1]  # ties share their average rank
    # ranks 1,2,3,4 vs 1,3,2,4: d² = 0,1,1,0 → 1 - 6*2/(4*15) = 0.8
    assert M.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert M.mse([1, 2, 3], [1, 0, 6]) == pytest.approx((0 + 4 + 9) / 3)


def test_entities_follow_conlleval() -> None:
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "B-X", "B-X"]
    assert M.entities(tags) == {("PER", 0, 1), ("LOC", 3, 4), ("LOC", 5, 5), ("ORG", 6, 6), ("X", 7, 7), ("X", 8, 8)}
    assert M.entities(["O", "O"]) == set()
    assert M.entities(["S-A", "B-A", "E-A", "I-A"]) == {("A", 0, 0), ("A", 1, 2), ("A", 3, 3)}


def test_entity_precision_recall_f1() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    # gold entities: PER(0,1), LOC(3), ORG(0) = 3; predicted: PER(0,1), ORG(3), ORG(0), LOC(1) = 4; right: PER, ORG(0) = 2
    assert M.entity_precision(pred, gold) == pytest.approx(2 / 4)
    assert M.entity_recall(pred, gold) == pytest.approx(2 / 3)
    assert M.entity_f1(pred, gold) == pytest.approx(2 * 2 / (4 + 3))
    assert M.token_accuracy(pred, gold) == pytest.approx(4 / 6)
    assert M.entity_f1([["O", "O"]], [["B-A", "O"]]) == 0.0


def test_squad_normalisation_exact_match_and_f1() -> None:
    assert M.normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert M.normalize_answer("an apple, a pear") == "apple pear"
    preds = ["the Eiffel tower", "in Paris France", "nothing"]
    golds = [["Eiffel Tower", "tower"], ["Paris"], ["something else"]]
    assert M.exact_match(preds, golds) == pytest.approx(100 / 3)
    # second: pred tokens in paris france, gold paris: p 1/3, r 1 → F1 0.5
    assert M.squad_f1(preds, golds) == pytest.approx(100 * (1 + 0.5 + 0) / 3)


def test_bleu_and_chrf_come_from_sacrebleu_with_signatures() -> None:
    pytest.importorskip("sacrebleu")
    assert M.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert M.bleu(["a b c d"], ["w x y z"]) == pytest.approx(0.0)
    score, signature = M.sacrebleu_score("chrf", ["the cat"], ["the cat"])
    assert score == pytest.approx(100.0) and signature.startswith("nrefs:1|")
    assert "tok:13a" in M.sacrebleu_score("bleu", ["x"], ["x"])[1]


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1"):
        M.accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no gold"):
        M.accuracy([], [])
