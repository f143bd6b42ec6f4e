"""The extractive QA demo: SQuAD-style questions about generated facts about people (bAbI-like)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from specc.runtime.data.demos.base import register
from specc.runtime.data.demos.text import splits

if TYPE_CHECKING:  # the records' module imports every file-format reader: loaded when a demo is built
    from specc.runtime.data.labelled import Splits

NAMES = [
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Karin", "Leon", "Maria",
    "Nils", "Olga", "Paul", "Rosa", "Samuel", "Tina", "Victor", "Wanda", "Yusuf", "Zoe", "Arthur", "Bianca", "Carlos",
    "Dora", "Emil", "Fatima", "George", "Hanna", "Ivan", "Julia", "Kofi", "Lena", "Marco", "Nora", "Oscar", "Priya",
    "Rahul", "Sofia", "Tomas", "Ulla", "Vera", "Walter", "Xenia", "Yara", "Aiko", "Boris", "Chloe",
]
PETS = ["Rex", "Bella", "Max", "Luna", "Charlie", "Milo", "Daisy", "Rocky", "Coco", "Bruno", "Pepper", "Oreo"]
CITIES = [
    "Lisbon", "Oslo", "Madrid", "Vienna", "Prague", "Dublin", "Athens", "Warsaw", "Helsinki", "Zurich", "Lyon",
    "Porto", "Munich", "Krakow", "Seville", "Bergen", "Ghent", "Toronto", "Chicago", "Boston", "Denver", "Lima",
    "Nairobi", "Cairo", "Mumbai", "Osaka", "Seoul", "Sydney", "Auckland", "New York", "Buenos Aires", "Cape Town",
    "Hong Kong", "Rio de Janeiro", "Mexico City", "San Diego",
]
VALUES = {  # answer category → what it can be
    "pet": PETS, "city": CITIES,
    "job": ["baker", "nurse", "pilot", "teacher", "lawyer", "farmer", "plumber", "chemist", "dentist", "architect",
            "engineer", "librarian", "carpenter", "journalist", "gardener", "painter", "tailor", "surgeon",
            "translator", "electrician", "bus driver", "fire fighter", "software developer"],
    "colour": ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "grey", "brown", "pink", "silver"],
    "thing": ["bicycle", "kite", "umbrella", "teapot", "backpack", "lamp", "canoe", "scooter", "clock", "sofa", "tent",
              "camera", "kettle", "car", "boat", "desk", "radio"],
    "instrument": ["piano", "violin", "guitar", "cello", "flute", "drums", "trumpet", "harp", "clarinet", "saxophone"],
    "food": ["pizza", "sushi", "pancakes", "lentil soup", "apple pie", "fried rice", "goulash", "tacos", "curry",
             "noodles", "paella", "dumplings"],
    "year": [str(y) for y in range(1950, 2006)],
}


@dataclass(frozen=True)
class Fact:
    """One kind of fact: the slots it fills, how the paragraph says it, how a question asks for it, and which
    slot answers. A question never repeats its sentence's words for the relation."""

    slots: dict[str, str]  # slot → answer category
    say: tuple[str, ...]
    ask: tuple[str, ...]
    answer: str


FACTS = {
    "home": Fact({"home": "city"}, ("{p} lives in {home}.", "{p} has a flat in {home}.", "These days {p} rents a house in {home}."),
                 ("Where does {p} live?", "In which city is the home of {p}?", "What city does {p} call home?"), "home"),
    "year": Fact({"year": "year"}, ("{p} was born in {year}.", "{p} came into the world in {year}."),
                 ("In what year was {p} born?", "When was {p} born?", "What is the birth year of {p}?"), "year"),
    "job": Fact({"job": "job"}, ("{p} works as {a_job}.", "{p} is {a_job} by trade.", "{p} earns a living as {a_job}."),
                ("What is the job of {p}?", "What does {p} do for a living?", "What is the profession of {p}?"), "job"),
    "pet": Fact({"pet": "pet"}, ("{p} has a dog called {pet}.", "Every morning {p} walks a dog called {pet}."),
                ("What is the name of the dog of {p}?", "What is the dog of {p} called?"), "pet"),
    "thing": Fact({"colour": "colour", "thing": "thing"}, ("{p} owns {a_colour} {thing}.", "{p} keeps {a_colour} {thing} at home."),
                  ("What colour is the {thing} of {p}?", "Which colour does the {thing} that {p} owns have?"), "colour"),
    "instrument": Fact({"instrument": "instrument"}, ("{p} plays the {instrument}.", "In the evenings {p} practises the {instrument}."),
                       ("Which instrument does {p} play?", "What does {p} make music on?"), "instrument"),
    "food": Fact({"food": "food"}, ("The favourite dish of {p} is {food}.", "{p} cooks {food} at every chance."),
                 ("What does {p} like to eat most?", "Which dish does {p} love?"), "food"),
}


def paragraph(rng: random.Random, people: int, questions: int) -> tuple[str, list[dict]]:
    """A paragraph about `people` people, 3-5 kinds of fact each (their sentences together, in a random
    order), and up to `questions` questions about different facts of it, each with its answer's text and
    the offset of its first character.

    Every value in a paragraph is different (people, cities, years, ...), so every question has one
    answer, found in the sentence that states the fact."""
    folk = rng.sample(NAMES, people)
    kinds = [rng.sample(sorted(FACTS), rng.randint(3, 5)) for _ in folk]
    categories = [c for ks in kinds for k in ks for c in FACTS[k].slots.values()]
    pools = {c: rng.sample(VALUES[c], categories.count(c)) for c in sorted(set(categories))}  # sorted: sets vary by process
    text, facts = "", []
    for name, ks in zip(folk, kinds):
        slots = {"p": name}
        for k in ks:
            slots.update({slot: pools[c].pop() for slot, c in FACTS[k].slots.items()})
        slots.update({f"a_{k}": f"{'an' if slots[k][0] in 'aeiou' else 'a'} {slots[k]}" for k in ("job", "colour") if k in slots})
        for k in ks:
            sentence = rng.choice(FACTS[k].say).format(**slots)
            text += (" " if text else "") + sentence
            facts.append((k, slots, len(text) - len(sentence), sentence))
    asked = []
    for k, slots, at, sentence in rng.sample(facts, min(questions, len(facts))):
        answer = slots[FACTS[k].answer]
        found = re.search(rf"\b{re.escape(answer)}\b", sentence)
        assert found is not None  # every sentence names the value it states
        asked.append({"question": rng.choice(FACTS[k].ask).format(**slots), "answer": answer, "start": at + found.start()})
    return text, asked


@register("qa", "extractive_qa",
          "SQuAD-style reading of generated facts about people (bAbI-like): a paragraph about 1-3 people states "
          "3-5 facts about each (home, birth year, job, a coloured thing, an instrument, a dog, a favourite dish; "
          "2-3 phrasings each); each question asks for one fact in other words than the paragraph's, so it needs "
          "the kind of fact and, where several people have that kind, the person. Paragraphs of more than about "
          "7 facts are longer than one 128-token window. No paragraph is in two splits. Not real data.")
def qa() -> Splits:
    rng = random.Random("qa")
    seen: set[str] = set()
    paragraphs: list[list[dict]] = []
    while len(paragraphs) < 1800:
        context, questions = paragraph(rng, rng.randint(1, 3), 4)
        if context in seen:
            continue
        seen.add(context)
        k = len(paragraphs)
        paragraphs.append([{"id": f"qa-{k}-{j}", "question": q["question"], "context": context,
                            "answers": [{"text": q["answer"], "answer_start": q["start"]}]} for j, q in enumerate(questions)])
    flat = lambda ps: [q for p in ps for q in p]  # noqa: E731
    return splits("qa", flat(paragraphs[200:]), flat(paragraphs[:100]), flat(paragraphs[100:200]))
