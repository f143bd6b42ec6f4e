"""The built-in demo data: deterministic, split without overlap, and well-formed for its task type."""

from __future__ import annotations

import collections
import json
import random

import pytest

from runtime.demos import DEMOS
from runtime.demos.classify import SUBJECTS, review_pair
from runtime.demos.grammar import translation_pair
from runtime.metrics import entities
from runtime.tasks import TASKS

KEY = {"sentiment": "text", "rating": "text", "acceptability": "text", "pairs": "first", "ner": "tokens", "qa": "id",
       "translation": "src"}


def test_every_task_type_has_a_demo() -> None:
    assert {d.task_type for d in DEMOS.values()} == set(TASKS)
    assert set(DEMOS) == set(KEY)


@pytest.mark.parametrize("name", sorted(KEY))
def test_demo_is_deterministic_and_its_splits_do_not_overlap(name: str) -> None:
    first, again = DEMOS[name].build(), DEMOS[name].build()
    assert [r.fields for r in first.train] == [r.fields for r in again.train]
    assert len(first.train) >= 1000 and len(first.validation) >= 150 and len(first.test) >= 150
    keys = [KEY[name], "second"] if name == "pairs" else [KEY[name]]  # pairs: neither review is in two splits
    seen = {json.dumps(r.fields[k]) for r in first.train for k in keys}
    held = {json.dumps(r.fields[k]) for r in first.validation + first.test for k in keys}
    assert not seen & held
    assert first.train[0].where == f"demo {name}, train #0"


@pytest.mark.parametrize("name, shares", [
    ("sentiment", {"negative": 0.5, "positive": 0.5}),
    ("acceptability", {"acceptable": 0.5, "unacceptable": 0.5}),
    ("pairs", {"both_negative": 0.25, "both_positive": 0.25, "mixed": 0.5}),
])
def test_classification_demos_have_every_label_in_its_share(name: str, shares: dict[str, float]) -> None:
    labels = [r.fields["label"] for r in DEMOS[name].build().train]
    assert {x: labels.count(x) / len(labels) for x in set(labels)} == pytest.approx(shares, abs=0.05)


def test_pairs_need_both_reviews() -> None:
    """The label follows the two scores; each review's polarity leaves two labels equally likely, and both
    reviews are of the same subject."""
    rng = random.Random(0)
    given: dict[tuple[int, bool], collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for _ in range(4000):
        pair = review_pair(rng)
        a, b = pair["scores"]
        assert pair["label"] == ("mixed" if (a > 3) != (b > 3) else "both_positive" if a > 3 else "both_negative")
        assert any(s in pair["first"].lower() and s in pair["second"].lower() for s in SUBJECTS)
        for which, score in enumerate((a, b)):
            given[which, score > 3][pair["label"]] += 1
    for (_, positive), counts in given.items():
        assert set(counts) == {"mixed", "both_positive" if positive else "both_negative"}
        assert counts["mixed"] / sum(counts.values()) == pytest.approx(0.5, abs=0.04)


def test_acceptability_negatives_are_word_swaps_of_real_sentences() -> None:
    for r in DEMOS["acceptability"].build().train[:200]:
        assert r.fields["text"] == r.fields["text"].lower() and r.fields["label"] in ("acceptable", "unacceptable")


def test_ner_tags_are_bio_and_held_out_names_are_unseen() -> None:
    demo = DEMOS["ner"].build()
    names = lambda rows: {tuple(r.fields["tokens"][a : b + 1]) for r in rows for _, a, b in entities(r.fields["tags"])}  # noqa: E731
    for r in demo.train[:300]:
        assert len(r.fields["tokens"]) == len(r.fields["tags"])
        assert all(t == "O" or t[:2] in ("B-", "I-") for t in r.fields["tags"])
    assert not names(demo.train) & names(demo.test)


def test_qa_answers_sit_at_their_offsets_in_contexts_longer_than_a_window() -> None:
    demo = DEMOS["qa"].build()
    long = 0
    for r in demo.train + demo.validation:
        (answer,) = r.fields["answers"]
        start = answer["answer_start"]
        assert r.fields["context"][start : start + len(answer["text"])] == answer["text"]
        long += len(r.fields["context"].split()) > 60  # over 100 sub-word tokens: more than one 128-token window
    assert long > len(demo.train) / 3


def test_translation_grammar_agrees_in_gender_and_case() -> None:
    rng = random.Random(3)
    pairs = [translation_pair(rng) for _ in range(300)]
    for en, de in pairs:
        assert en.endswith(".") and de.endswith(".")
        if en.startswith("The dog sees the cat"):
            assert de.startswith("Der Hund sieht die Katze")
    assert any(", dass " in de for _, de in pairs) and any(" den " in de for _, de in pairs)
