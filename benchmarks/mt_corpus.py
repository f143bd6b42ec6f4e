"""A realistic English→German parallel corpus from real text every Debian-like system ships offline.

The gettext catalogs under /usr/share/locale/de/LC_MESSAGES (coreutils, apt,
dpkg, bash, git, glib, …) pair each program message (English) with its German
translation, written by people. Messages are real, technical and long-tailed:
option descriptions, errors, prompts with `%s` placeholders, unlike the demo's
generated grammar. This module keeps single-line pairs of 3 to 30 words,
de-duplicated by source, shuffled with a fixed seed, and writes them as
`train.tsv`, `validation.tsv` and `test.tsv` (headed `src`/`tgt`), the format a
user's corpus comes in:

    python -m benchmarks.mt_corpus /tmp/mt        # then point [tasks.NAME.data] at the files

Counts of what was kept and skipped (and why) are printed; nothing is dropped silently.
"""

from __future__ import annotations

import argparse
import gettext
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

CATALOGS = Path("/usr/share/locale/de/LC_MESSAGES")
SIZES = {"train": 8000, "validation": 400, "test": 400}


@dataclass
class Corpus:
    pairs: list[tuple[str, str]]
    catalogs: int
    skipped: Counter[str] = field(default_factory=Counter)


def _messages(path: Path) -> dict[str, str]:
    """A catalog's English → German messages. `GNUTranslations` parses the .mo file; its `_catalog`
    is the only way the standard library exposes every entry."""
    with path.open("rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    return {k: v for k, v in catalog.items() if isinstance(k, str) and isinstance(v, str)}


def _why_not(src: str, tgt: str) -> str | None:
    if not src or not tgt:
        return "empty (the catalog header, or untranslated)"
    if "\n" in src.strip() or "\n" in tgt.strip() or "\t" in src + tgt:
        return "several lines or a tab"
    if not 3 <= len(src.split()) <= 30:
        return "not 3 to 30 words"
    if src.strip() == tgt.strip():
        return "left in English"
    return None


def build(catalogs: Path = CATALOGS, seed: int = 0) -> Corpus:
    """Every usable pair of every catalog, de-duplicated by English source, in a seeded random order."""
    found: dict[str, str] = {}
    skipped: Counter[str] = Counter()
    files = sorted(catalogs.glob("*.mo"))
    for path in files:
        try:
            messages = _messages(path)
        except (OSError, UnicodeDecodeError) as err:  # a catalog in a legacy charset
            skipped[f"catalog unreadable ({type(err).__name__})"] += 1
            continue
        for src, tgt in messages.items():
            why = _why_not(src, tgt)
            if why is not None:
                skipped[why] += 1
            elif src.strip() in found:
                skipped["duplicate source"] += 1
            else:
                found[src.strip()] = tgt.strip()
    pairs = sorted(found.items())
    random.Random(seed).shuffle(pairs)
    return Corpus(pairs, len(files), skipped)


def write(corpus: Corpus, out: Path, sizes: dict[str, int] = SIZES) -> dict[str, Path]:
    """The first pairs as train, then validation, then test (TSV with a `src`/`tgt` header)."""
    out.mkdir(parents=True, exist_ok=True)
    files, first = {}, 0
    for split, n in sizes.items():
        rows = corpus.pairs[first : first + n]
        first += n
        files[split] = out / f"{split}.tsv"
        files[split].write_text("src\ttgt\n" + "".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    corpus = build()
    if len(corpus.pairs) < sum(SIZES.values()):
        raise SystemExit(f"only {len(corpus.pairs)} pairs in {CATALOGS}; need {sum(SIZES.values())}")
    files = write(corpus, args.out)
    print(f"{len(corpus.pairs)} pairs from {corpus.catalogs} catalogs; skipped: "
          + ", ".join(f"{n} {why}" for why, n in corpus.skipped.most_common()))
    for split, path in files.items():
        print(f"{split}: {path} ({SIZES[split]} pairs)")


if __name__ == "__main__":
    main()
