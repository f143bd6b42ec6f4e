"""Generated demos from small grammars: named entities (ner) and English→German (translation)."""

from __future__ import annotations

import builtins
import random
import sys
import unicodedata
from typing import TYPE_CHECKING

from specc.runtime.data.demos.base import register
from specc.runtime.data.demos.text import splits

if TYPE_CHECKING:  # the records' module imports every file-format reader: loaded when a demo is built
    from specc.runtime.data.labelled import Splits


# -- ner ------------------------------------------------------------------------------------
def _entities() -> dict[str, list[list[str]]]:
    """Entity names by type, as word lists: standard-library modules (MOD), builtin functions (FUNC),
    builtin exceptions (EXC), and Unicode character names (CHAR, several words each)."""
    modules = sorted(m for m in sys.stdlib_module_names if not m.startswith("_") and m.isidentifier())
    values = vars(builtins)
    exceptions = sorted(n for n, v in values.items() if isinstance(v, type) and issubclass(v, BaseException))
    functions = sorted(n for n, v in values.items() if callable(v) and not isinstance(v, type) and not n.startswith("_"))
    chars = [unicodedata.name(chr(c), "") for c in range(0xC0, 0x250)]
    return {"MOD": [[m] for m in modules], "FUNC": [[f] for f in functions], "EXC": [[e] for e in exceptions],
            "CHAR": [c.split() for c in chars if c]}


NER_TEMPLATES = [
    "import {MOD} and call {FUNC} on the result .",
    "the {MOD} module raises {EXC} when the input is invalid .",
    "{FUNC} returns a new object , and {EXC} means it failed .",
    "catch {EXC} around every call to {FUNC} .",
    "the character {CHAR} is not allowed in names that {MOD} reads .",
    "{MOD} prints {CHAR} as a single code point .",
    "use {FUNC} instead of {MOD} for simple cases .",
    "if {FUNC} raises {EXC} , try {MOD} instead .",
    "the name of {CHAR} is looked up with {FUNC} .",
    "type {CHAR} and then call {FUNC} on it .",
    "since version three , {MOD} no longer raises {EXC} .",
    "a test for {MOD} checks that {FUNC} handles {CHAR} .",
    "wrap {FUNC} so that {EXC} never reaches the caller .",
    "people often confuse {MOD} with {FUNC} .",
]


def _sentence(rng: random.Random, template: str, pool: dict[str, list[list[str]]]) -> dict[str, list[str]]:
    tokens: list[str] = []
    tags: list[str] = []
    for word in template.split():
        if word.startswith("{") and word.endswith("}"):
            kind = word[1:-1]
            name = rng.choice(pool[kind])
            tokens += name
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
        else:
            tokens.append(word)
            tags.append("O")
    return {"tokens": tokens, "tags": tags}


@register("ner", "token_classification",
          "Generated sentences (14 templates) naming standard-library modules (MOD), builtin functions (FUNC), builtin "
          "exceptions (EXC) and Unicode character names (CHAR, multi-word), BIO-tagged. Validation and test draw their "
          "names from halves of each list that training never sees, so the tagger must use context and word shape.")
def ner() -> Splits:
    rng = random.Random("ner")
    seen: dict[str, list[list[str]]] = {}
    unseen: dict[str, list[list[str]]] = {}
    for kind, names in _entities().items():
        names = list(names)
        rng.shuffle(names)
        seen[kind], unseen[kind] = names[: len(names) // 2], names[len(names) // 2 :]
    train = [_sentence(rng, rng.choice(NER_TEMPLATES), seen) for _ in range(2000)]
    validation = [_sentence(rng, rng.choice(NER_TEMPLATES), unseen) for _ in range(300)]
    test = [_sentence(rng, rng.choice(NER_TEMPLATES), unseen) for _ in range(300)]
    return splits("ner", train, validation, test)


# -- translation -------------------------------------------------------------------------------
NOUNS = {  # English: (German, gender)
    "cat": ("Katze", "f"), "dog": ("Hund", "m"), "house": ("Haus", "n"), "child": ("Kind", "n"), "man": ("Mann", "m"),
    "woman": ("Frau", "f"), "book": ("Buch", "n"), "car": ("Auto", "n"), "tree": ("Baum", "m"), "city": ("Stadt", "f"),
    "bird": ("Vogel", "m"), "table": ("Tisch", "m"), "door": ("Tür", "f"), "garden": ("Garten", "m"),
    "apple": ("Apfel", "m"), "letter": ("Brief", "m"), "teacher": ("Lehrer", "m"), "river": ("Fluss", "m"),
    "ship": ("Schiff", "n"), "horse": ("Pferd", "n"), "flower": ("Blume", "f"), "window": ("Fenster", "n"),
    "friend": ("Freund", "m"), "mouse": ("Maus", "f"), "computer": ("Computer", "m"), "program": ("Programm", "n"),
    "file": ("Datei", "f"), "bridge": ("Brücke", "f"),
}
ADJECTIVES = {"big": "groß", "small": "klein", "old": "alt", "new": "neu", "red": "rot", "green": "grün",
              "fast": "schnell", "young": "jung", "beautiful": "schön", "tired": "müde", "happy": "glücklich",
              "quiet": "ruhig"}
VERBS = {"sees": "sieht", "finds": "findet", "likes": "mag", "buys": "kauft", "carries": "trägt", "paints": "malt",
         "visits": "besucht", "hears": "hört", "knows": "kennt", "builds": "baut", "opens": "öffnet", "loses": "verliert"}
ADVERBS = {"today": "heute", "often": "oft", "again": "wieder", "never": "nie"}
THAT = {"I know": "ich weiß", "she says": "sie sagt", "we hope": "wir hoffen", "he thinks": "er denkt"}
ARTICLES = {  # (definite?, case, gender) → article; adjective ending after it
    (True, "nom"): {"m": ("der", "e"), "f": ("die", "e"), "n": ("das", "e")},
    (True, "acc"): {"m": ("den", "en"), "f": ("die", "e"), "n": ("das", "e")},
    (False, "nom"): {"m": ("ein", "er"), "f": ("eine", "e"), "n": ("ein", "es")},
    (False, "acc"): {"m": ("einen", "en"), "f": ("eine", "e"), "n": ("ein", "es")},
}


def _phrase(rng: random.Random, case: str) -> tuple[str, str]:
    """A noun phrase in English and German (article, optional adjective, noun) in `case`."""
    noun = rng.choice(list(NOUNS))
    german, gender = NOUNS[noun]
    definite = rng.random() < 0.6
    article, ending = ARTICLES[(definite, case)][gender]
    english = "the" if definite else "a"
    if rng.random() < 0.5:
        adj = rng.choice(list(ADJECTIVES))
        english = "an" if not definite and adj[0] in "aeiou" else english
        return f"{english} {adj} {noun}", f"{article} {ADJECTIVES[adj]}{ending} {german}"
    return f"{english} {noun}", f"{article} {german}"


def _clause(rng: random.Random, subordinate: bool) -> tuple[str, str]:
    subj_en, subj_de = _phrase(rng, "nom")
    obj_en, obj_de = _phrase(rng, "acc")
    verb = rng.choice(list(VERBS))
    adv = rng.choice(list(ADVERBS)) if rng.random() < 0.3 else None
    en = f"{subj_en} {verb} {obj_en}" + (f" {adv}" if adv else "")
    if subordinate:  # verb last: "dass die Katze den Hund heute sieht"
        de = f"{subj_de} {ADVERBS[adv] + ' ' if adv else ''}{obj_de} {VERBS[verb]}"
    else:
        de = f"{subj_de} {VERBS[verb]} {obj_de}" + (f" {ADVERBS[adv]}" if adv else "")
    return en, de


def translation_pair(rng: random.Random) -> tuple[str, str]:
    kind = rng.random()
    if kind < 0.55:
        en, de = _clause(rng, False)
    elif kind < 0.8:
        lead = rng.choice(list(THAT))
        en, de = _clause(rng, True)
        en, de = f"{lead} that {en}", f"{THAT[lead]}, dass {de}"
    else:
        (en1, de1), (en2, de2) = _clause(rng, False), _clause(rng, False)
        en, de = f"{en1} and {en2}", f"{de1} und {de2}"
    return en[0].upper() + en[1:] + ".", de[0].upper() + de[1:] + "."


@register("translation", "translation",
          "A toy English→German grammar (28 nouns with gender, 12 adjectives with case endings, 12 verbs, adverbs, "
          "'that'-clauses with the verb last, 'and'); generated, distinct sentences. Not real translation data.")
def translation() -> Splits:
    rng = random.Random("translation")
    found: dict[str, str] = {}
    while len(found) < 4600:
        en, de = translation_pair(rng)
        found.setdefault(en, de)
    rows = [{"src": en, "tgt": de} for en, de in found.items()]
    return splits("translation", rows[:4000], rows[4000:4300], rows[4300:])
