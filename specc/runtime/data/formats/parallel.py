"""Parallel text as WMT and OPUS ship it: ``train.en`` and ``train.de``, line N of one the translation of
line N of the other. The two files must have the same number of lines (else nothing lines up: an error
that says both counts). A pair whose two sides are both blank is passed over and counted; a pair with
only one side blank is a bad record, named at its line."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

from specc.runtime.errors import UserError
from specc.runtime.data.formats.compression import open_text
from specc.runtime.data.formats.record import Record, Table


def parallel(src: Path, tgt: Path, src_field: str, tgt_field: str) -> Table:
    for f in (src, tgt):
        if not f.is_file():
            raise UserError(f"data file not found: {f}")
    records, blank = [], 0
    with open_text(src) as a, open_text(tgt) as b:
        n = 0
        for n, (x, y) in enumerate(zip_longest(a, b), 1):
            if x is None or y is None:
                raise UserError(_mismatch(src, tgt, n, x is None))
            x, y = x.rstrip("\r\n"), y.rstrip("\r\n")
            if not x.strip() and not y.strip():
                blank += 1
                continue
            if not x.strip() or not y.strip():
                empty, full = (src, tgt) if not x.strip() else (tgt, src)
                raise UserError(f"{empty}:{n}: blank line, but line {n} of {full} is not: the files are out of step")
            records.append(Record({src_field: x, tgt_field: y}, f"{src}:{n}"))
    notes = [f"{src} + {tgt}: {len(records)} parallel lines"]
    if blank:
        notes.append(f"{src} + {tgt}: {blank} line{'s' * (blank != 1)} blank on both sides passed over")
    return Table(records, notes)


def _mismatch(src: Path, tgt: Path, n: int, src_ended: bool) -> str:
    short, long = (src, tgt) if src_ended else (tgt, src)
    lines = _count(long)
    return (f"{short} has {n - 1} lines but {long} has {lines}: parallel files must have the same number of lines "
            f"(line N of one is the translation of line N of the other)")


def _count(path: Path) -> int:
    with open_text(path) as fh:
        return sum(1 for _ in fh)
