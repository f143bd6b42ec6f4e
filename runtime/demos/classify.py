"""Demos for sequence classification and regression: sentiment, rating, acceptability, pairs."""

from __future__ import annotations

import random
from typing import Any

from runtime.demos import register
from runtime.demos.text import sentences, split, summaries
from runtime.tasks import Splits

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
    text = pattern.format(s=rng.choice(SUBJECTS), a=a, b=b, i=rng.choice(INTENSIFIERS))
    return text[0].upper() + text[1:], float(score)


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
    from runtime.demos.text import splits

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


@register("pairs", "classification",
          "QNLI-like pairs: a standard-library function's name and a one-line docstring summary; label 'match' when "
          "the summary is that function's own, 'mismatch' when it belongs to another function (of the same module "
          "where possible). Names never appear in their summaries.")
def pairs() -> Splits:
    rng = random.Random("pairs")
    docs = summaries()
    by_module: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        by_module.setdefault(d.module, []).append(i)
    rows = []
    for i, d in enumerate(docs):
        name = f"{d.module}.{d.name}"
        if rng.random() < 0.5:
            rows.append({"name": name, "summary": d.summary, "label": "match"})
            continue
        same = [j for j in by_module[d.module] if docs[j].summary != d.summary]
        other = docs[rng.choice(same)] if same and rng.random() < 0.7 else docs[rng.randrange(len(docs))]
        if other.summary == d.summary:
            continue
        rows.append({"name": name, "summary": other.summary, "label": "mismatch"})
    return split(rows, (2000, 300, 300), "pairs")
