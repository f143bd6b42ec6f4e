"""Format readers: each published layout a user already holds, read as it is, into `Record`s.

One function per format, each from a path (and `ReadOptions`) to a `Table`:
its records, each naming where it was read (``file:line``, a JSON path, a
Parquet row), and notes saying what the reader decided (a header row, the
columns) or passed over (``-DOCSTART-`` lines, blank lines), so nothing is
dropped without a line saying so. Compressed files (.gz, .bz2, .xz, .zst) read
as their inner format. Pretraining corpora stream documents through
`specc.runtime.data.formats.documents`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from specc.runtime.errors import UserError
from specc.runtime.data.formats import arrow, conll, squad, tables
from specc.runtime.data.formats.compression import compression_of, decoding, inner_suffix
from specc.runtime.data.formats.parallel import parallel
from specc.runtime.data.formats.record import ReadOptions, Record, Table

__all__ = ["FORMATS", "ReadOptions", "Record", "Table", "format_of", "parallel", "read_table"]

Reader = Callable[[Path, ReadOptions], Table]
FORMATS: dict[str, Reader] = {
    "jsonl": tables.jsonl,
    "csv": lambda p, o: tables.delimited(p, "csv", o),
    "tsv": lambda p, o: tables.delimited(p, "tsv", o),
    "squad": squad.squad,
    "text": tables.text_lines,
    "conll": conll.conll2003,
    "conllu": conll.conllu,
    "parquet": arrow.parquet,
    "datasets": arrow.datasets_folder,
}
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".json": "squad", ".txt": "text",
            ".conll": "conll", ".conllu": "conllu", ".parquet": "parquet"}
CONLL_NAMES = re.compile(r"^(eng|deu|esp|ned)\.(train|testa|testb)$", re.IGNORECASE)  # CoNLL-2002/2003 as published


def format_of(path: Path, declared: str = "auto") -> str:
    """The declared format, or the one the name says (``eng.train`` is CoNLL-2003; a folder is `datasets`)."""
    if declared != "auto":
        return declared
    if path.is_dir():
        return "datasets"
    name = path.name[: -len(compression_of(path) or "")] if compression_of(path) else path.name
    if CONLL_NAMES.match(name):
        return "conll"
    fmt = SUFFIXES.get(inner_suffix(path))
    if fmt is None:
        raise UserError(f"{path}: cannot tell the data format from the name; name files .jsonl, .csv, .tsv, .json (SQuAD), "
                        f".txt, .conll, .conllu or .parquet (optionally compressed: .gz, .bz2, .xz, .zst), or declare "
                        f"format = \"...\" ({', '.join(FORMATS)})")
    return fmt


def read_table(path: Path, fmt: str = "auto", opts: ReadOptions = ReadOptions()) -> Table:
    """Every record of a data file (or datasets folder); a missing file, bad JSON, a ragged row, bytes that are
    not UTF-8 or a truncated archive is a `UserError` naming the place."""
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    kind = format_of(path, fmt)
    if (kind == "datasets") != path.is_dir():
        raise UserError(f"{path}: format '{kind}' reads a {'folder' if kind == 'datasets' else 'file'}")
    with decoding(path, lambda err: f"{tables.first_bad_line(path)}: not UTF-8 text ({err.reason})"):
        return FORMATS[kind](path, opts)
