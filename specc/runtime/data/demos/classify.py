"""Demos for sequence classification and regression: sentiment, rating, acceptability, pairs."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from specc.runtime.data.demos.base import register
from specc.runtime.data.demos.text import sentences, split, splits

if TYPE_CHECKING:  # the records' module imports every file-format reader: loaded when a demo is built
    from specc.runtime.data.labelled import Splits

# -- generated reviews (sentiment, rating) ----------------------------------------------
SUBJECTS = [
    "the documentation", "this library", "the new release", "the api", "the tutorial", "this module", "the installer",
    "the test suite", "the error messages", "the command line tool", "this package", "the debugger", "the editor plugin",
    "the build system", "the type checker", "the web framework", "the database driver", "the profiler", "the formatter",
    "the upgrade", "the packaging tool", "the standard library", "the interpreter", "the plotting library",
]
# word → score on a 1..5 scale: 5 and 1 are strong, 4 and 2 mild
ADJECTIVES = {
    "excellent": 5, "superb": 5, "brilliant": 5, "wonderful": 5, "outstanding": 5, "delightful": 5,
    "good": 4, "helpful": 4, "clear": 4, "reliable": 4, "fast": 4, "useful": 4, "pleasant": 4, "solid": 4, "tidy": 4,
    "dull": 2, "confusing": 2, "slow": 2, "clumsy": 2, "fragile": 2, "sloppy": 2, "outdated": 2, "noisy": 2, "awkward": 2,
    "awful": 1, "terrible": 1, "useless": 1, "broken": 1, "horrible": 1, "dreadful": 1,
}
INTENSIFIERS = ["very", "really", "extremely", "truly"]
TEMPLATES = [  # (pattern, how the score is read) with {s} subject, {a} {b} adjectives, {i} intensifier
    ("{s} is {a}.", "a"), ("i found {s} {a}.", "a"), ("{s} is {i} {a}.", "a+"), ("{s} is not {a}.", "not a"),
    ("i would not call {s} {a}.", "not a"), ("{s} is {a} but {b}.", "a but b"), ("{s} is {a}, although {b}.", "a but b"),
    ("{s} seems {a} and {b}.", "a and b"), ("honestly, {s} could not be more {a}.", "a+"),
    ("after a week with it, {s} feels {a}.", "a"), ("nobody would say {s} is {a}.", "not a"),
]


def review(rng: random.Random) -> tuple[str, float]:
    """One generated review and its score (1..5, never exactly 3)."""
    text, score, _ = review_of(rng)
    return text, score


def review_of(rng: random.Random) -> tuple[str, float, str]:
    """One generated review, its score (1..5, never exactly 3) and its subject."""
    pattern, rule = rng.choice(TEMPLATES)
    words = list(ADJECTIVES)
    a = rng.choice(words)
    b = rng.choice([w for w in words if (ADJECTIVES[w] > 3) == (ADJECTIVES[a] > 3)] if rule == "a and b" else words)
    score = {
        "a": ADJECTIVES[a],
        "a+": min(5.0, ADJECTIVES[a] + 0.5) if ADJECTIVES[a] > 3 else max(1.0, ADJECTIVES[a] - 0.5),
        "not a": 3 + (3 - ADJECTIVES[a]) / 2,
        "a but b": 0.25 * ADJECTIVES[a] + 0.75 * ADJECTIVES[b],
        "a and b": (ADJECTIVES[a] + ADJECTIVES[b]) / 2,
    }[rule]
    subject = rng.choice(SUBJECTS)
    text = pattern.format(s=subject, a=a, b=b, i=rng.choice(INTENSIFIERS))
    return text[0].upper() + text[1:], float(score), subject


def _reviews(n: int, seed: str) -> list[tuple[str, float]]:
    """`n` distinct reviews (no sentence is in two splits)."""
    rng = random.Random(seed)
    found: dict[str, float] = {}
    while len(found) < n:
        text, score = review(rng)
        found.setdefault(text, score)
    return list(found.items())


@register("sentiment", "classification",
          "Generated one-sentence software reviews (24 subjects, 30 adjectives, 11 templates with negation, "
          "intensifiers and 'but'); label positive when the score is above 3. Not real reviews.")
def sentiment() -> Splits:
    rows = [{"text": t, "label": "positive" if s > 3 else "negative"} for t, s in _reviews(3000, "sentiment")]
    return _cut(rows, (2200, 400, 400), "sentiment")


@register("rating", "regression", "The generated reviews of the sentiment demo with their 1-5 score as the target.")
def rating() -> Splits:
    rows = [{"text": t, "label": s} for t, s in _reviews(3000, "rating")]
    return _cut(rows, (2200, 400, 400), "rating")


def _cut(rows: list[dict[str, Any]], sizes: tuple[int, int, int], demo: str) -> Splits:
    n_tr, n_va, _ = sizes
    return splits(demo, rows[:n_tr], rows[n_tr : n_tr + n_va], rows[n_tr + n_va :])


# -- stdlib prose ------------------------------------------------------------------------
@register("acceptability", "classification",
          "Word-order acceptability (a simple CoLA-like probe): real sentences from the standard library's docstrings "
          "(lower-cased words), half of them with their words in a random order; label whether the order is the original.")
def acceptability() -> Splits:
    rng = random.Random("acceptability")
    rows = []
    for text in sentences():
        words = text.split()
        if rng.random() < 0.5:
            rows.append({"text": text, "label": "acceptable"})
            continue
        shuffled = list(words)
        while shuffled == words:  # sentences have at least six words, so this ends
            rng.shuffle(shuffled)
        rows.append({"text": " ".join(shuffled), "label": "unacceptable"})
    return split(rows, (3000, 400, 400), "acceptability")


# -- two reviews (pairs) ----------------------------------------------------------------------
def review_pair(rng: random.Random) -> dict[str, Any]:
    """Two different generated reviews of the same subject, their scores, and what they say together:
    "both_positive", "both_negative" or "mixed" (one above 3, one below). Each review's polarity is drawn
    independently, so whatever one review says, the two labels it leaves are equally likely."""
    first, a, subject = review_of(rng)
    while True:
        second, b, about = review_of(rng)
        if about == subject and second != first:
            break
    label = "mixed" if (a > 3) != (b > 3) else "both_positive" if a > 3 else "both_negative"
    return {"first": first, "second": second, "label": label, "scores": (a, b)}


@register("pairs", "classification",
          "A text pair: two generated reviews of the same subject (the sentiment demo's generator); label "
          "'both_positive', 'both_negative' or 'mixed'. Half the pairs are mixed; either review alone leaves two "
          "labels equally likely, so it does no better than the majority class, and the pair decides. No review is "
          "in two splits. Not real data.")
def pairs() -> Splits:
    rng = random.Random("pairs")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < 4800:
        pair = review_pair(rng)
        if pair["first"] in seen or pair["second"] in seen:
            continue
        seen |= {pair["first"], pair["second"]}
        rows.append({k: pair[k] for k in ("first", "second", "label")})
    return _cut(rows, (4000, 400, 400), "pairs")
