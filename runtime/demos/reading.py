"""The extractive QA demo: SQuAD-style questions about standard-library modules."""

from __future__ import annotations

import random

from runtime.demos import register
from runtime.demos.text import Documented, splits, summaries
from runtime.tasks import Splits


def _context(module: str, entries: list[Documented]) -> tuple[str, list[dict]]:
    """A paragraph listing `entries` as "name: summary", and one question per entry whose answer is the name."""
    text = f"The {module} module provides the following."
    questions = []
    for e in entries:
        text += " "
        start = len(text)
        text += f"{e.name}: {e.summary}" + ("" if e.summary.endswith((".", "!", "?")) else ".")
        ask = e.summary.rstrip(".")
        questions.append({"question": f"Which one: {ask[0].lower() + ask[1:]}?", "answer": e.name, "start": start})
    return text, questions


@register("qa", "extractive_qa",
          "SQuAD-style reading: a paragraph lists 4-9 functions and classes of a standard-library module with the first "
          "sentence of each docstring; each question quotes one summary and its answer is the name it describes. "
          "Contexts are often longer than one window, so answers must be found across windows.")
def qa() -> Splits:
    rng = random.Random("qa")
    by_module: dict[str, list[Documented]] = {}
    for d in summaries():
        by_module.setdefault(d.module, []).append(d)
    paragraphs: list[list[dict]] = []
    for module in sorted(by_module):
        entries = list({d.summary: d for d in by_module[module]}.values())  # distinct summaries only
        rng.shuffle(entries)
        while len(entries) >= 4:
            size = rng.randint(4, 9)
            group, entries = entries[:size], entries[size:]
            context, questions = _context(module, group)
            paragraphs.append([{"id": f"{module}-{len(paragraphs)}-{k}", "question": q["question"], "context": context,
                                "answers": [{"text": q["answer"], "answer_start": q["start"]}]}
                               for k, q in enumerate(questions)])
    rng.shuffle(paragraphs)
    cut = max(1, len(paragraphs) // 10)
    flat = lambda ps: [q for p in ps for q in p]  # noqa: E731
    return splits("qa", flat(paragraphs[2 * cut :]), flat(paragraphs[:cut]), flat(paragraphs[cut : 2 * cut]))
