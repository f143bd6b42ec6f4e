"""Column files with one token a line and a blank line between sentences: CoNLL-2003 and CoNLL-U.

CoNLL-2003 as published (``eng.train``): ``word POS chunk NER`` separated by
spaces, ``-DOCSTART- -X- -X- O`` lines between documents (skipped, and
counted). Each sentence becomes one record whose fields are lists, one per
column: ``tokens, pos, chunk, tags`` by default (the last column is the NER
tag), or the names declared in ``data.columns``. A task picks the tag column
by naming its field (``tags = "chunk"``).

CoNLL-U (Universal Dependencies): ``#`` comment lines, ten tab-separated
columns; multi-word token ranges (``1-2``) and empty nodes (``1.1``) are not
words of the sentence and are passed over (counted).
"""

from __future__ import annotations

from pathlib import Path

from specc.runtime.errors import UserError
from specc.runtime.data.formats.compression import open_text
from specc.runtime.data.formats.record import ReadOptions, Record, Table

CONLL2003 = ("tokens", "pos", "chunk", "tags")
CONLLU = ("id", "tokens", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
DOCSTART = "-DOCSTART-"


def _default_columns(width: int) -> tuple[str, ...]:
    """CoNLL-2003's names for four columns; otherwise tokens first, tags last, col2.. between."""
    if width == len(CONLL2003):
        return CONLL2003
    if width == 1:
        return ("tokens",)
    return ("tokens", *(f"col{k}" for k in range(2, width)), "tags")


def conll2003(path: Path, opts: ReadOptions) -> Table:
    records: list[Record] = []
    rows: list[list[str]] = []
    start = 0
    docstarts = 0
    names = opts.columns
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            cells = line.split()
            if cells and cells[0] == DOCSTART:
                docstarts += 1
                continue
            if not cells:
                if rows:
                    records.append(_sentence(rows, names, f"{path}:{start}"))
                    rows = []
                continue
            if rows and len(cells) != len(rows[0]):
                raise UserError(f"{path}:{n}: {len(cells)} columns, but the sentence's first line (line {start}) has {len(rows[0])}")
            if names is None:
                names = _default_columns(len(cells))
            if len(cells) != len(names):
                raise UserError(f"{path}:{n}: {len(cells)} columns, but {len(names)} are named ({', '.join(names)})")
            if not rows:
                start = n
            rows.append(cells)
    if rows:
        records.append(_sentence(rows, names, f"{path}:{start}"))
    notes = [f"{path}: CoNLL columns {', '.join(names or ())}; one record per sentence"]
    if docstarts:
        notes.append(f"{path}: {docstarts} {DOCSTART} line{'s' * (docstarts != 1)} (document boundaries) skipped")
    return Table(records, notes)


def _sentence(rows: list[list[str]], names: tuple[str, ...] | None, where: str) -> Record:
    assert names is not None
    return Record({name: [r[k] for r in rows] for k, name in enumerate(names)}, where)


def conllu(path: Path, opts: ReadOptions) -> Table:
    names = opts.columns or CONLLU
    if len(names) != len(CONLLU):
        raise UserError(f"{path}: CoNLL-U has {len(CONLLU)} columns, but data.columns names {len(names)}")
    records: list[Record] = []
    rows: list[list[str]] = []
    comments: dict[str, str] = {}
    start, passed = 0, 0
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                if rows:
                    records.append(_ud_sentence(rows, names, comments, f"{path}:{start}"))
                rows, comments = [], {}
                continue
            if text.startswith("#"):
                key, _, value = text[1:].partition("=")
                comments[key.strip()] = value.strip()
                continue
            cells = text.split("\t")
            if len(cells) != len(CONLLU):
                raise UserError(f"{path}:{n}: CoNLL-U lines have {len(CONLLU)} tab-separated columns, this one {len(cells)}")
            if "-" in cells[0] or "." in cells[0]:  # a multi-word token's range, or an empty node: not a word
                passed += 1
                continue
            if not rows:
                start = n
            rows.append(cells)
    if rows:
        records.append(_ud_sentence(rows, names, comments, f"{path}:{start}"))
    notes = [f"{path}: CoNLL-U, one record per sentence (fields {', '.join(names)})"]
    if passed:
        notes.append(f"{path}: {passed} multi-word token range{'s' * (passed != 1)} / empty node{'s' * (passed != 1)} "
                     f"passed over (their words are listed one by one)")
    return Table(records, notes)


def _ud_sentence(rows: list[list[str]], names: tuple[str, ...], comments: dict[str, str], where: str) -> Record:
    fields: dict[str, object] = {name: [r[k] for r in rows] for k, name in enumerate(names)}
    for key in ("sent_id", "text"):
        if key in comments and key not in fields:
            fields[key] = comments[key]
    return Record(fields, where)
