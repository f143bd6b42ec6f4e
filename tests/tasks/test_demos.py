"""The built-in demo data: deterministic, split without overlap, and well-formed for its task type."""

from __future__ import annotations

import collections
import json
import os
import random
import re
import subprocess
import sys

import pytest

from helpers import ROOT, runner
from specc.runtime.data.demos import DEMOS
from specc.runtime.data.demos.classify import SUBJECTS, review_pair
from specc.runtime.data.demos.grammar import translation_pair
from specc.runtime.tasks.metrics import entities
from specc.runtime.tasks import TASKS

KEY = {"sentiment": "text", "rating": "text", "acceptability": "text", "pairs": "first", "ner": "tokens", "qa": "context",
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


def test_demos_do_not_depend_on_the_process() -> None:
    """The same examples under two string-hash seeds (iterating a set of strings would differ)."""
    script = ("import hashlib, json; from specc.runtime.data.demos import DEMOS; print({n: hashlib.sha256(json.dumps("
              "[[r.fields for r in s.train + s.test] for s in [d.build()]]).encode()).hexdigest() for n, d in DEMOS.items()})")
    runs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    digests = [run.communicate()[0] for run in runs]
    assert all(run.returncode == 0 for run in runs) and digests[0] == digests[1] and digests[0].count(":") == len(DEMOS)


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


def test_qa_answers_are_unique_spans_and_long_contexts_take_several_windows() -> None:
    demo = DEMOS["qa"].build()
    for r in demo.train + demo.validation + demo.test:
        (answer,) = r.fields["answers"]
        start, text, context = answer["answer_start"], answer["text"], r.fields["context"]
        assert context[start : start + len(text)] == text
        assert len(re.findall(rf"\b{re.escape(text)}\b", context)) == 1, (text, context)  # one right answer
    qa = runner("bert-tiny-qa.toml", "qa")  # the spec's max_len and doc_stride (with the tests' small tokenizer)
    features = qa.encode(demo.validation, gold=True)
    windows = collections.Counter(f.example for f in features)
    assert 1 in windows.values() and max(windows.values()) >= 3
    assert {f.example for f in features if f.target != (0, 0)} == set(range(len(demo.validation)))  # each answer fits a window


def test_qa_questions_do_not_quote_their_context() -> None:
    def trigrams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9']+", text.lower())
        return set(zip(words, words[1:], words[2:]))

    demo = DEMOS["qa"].build()
    for r in demo.train + demo.validation:
        assert not trigrams(r.fields["question"]) & trigrams(r.fields["context"]), r.fields["question"]


def test_translation_grammar_agrees_in_gender_and_case() -> None:
    rng = random.Random(3)
    pairs = [translation_pair(rng) for _ in range(300)]
    for en, de in pairs:
        assert en.endswith(".") and de.endswith(".")
        if en.startswith("The dog sees the cat"):
            assert de.startswith("Der Hund sieht die Katze")
    assert any(", dass " in de for _, de in pairs) and any(" den " in de for _, de in pairs)
