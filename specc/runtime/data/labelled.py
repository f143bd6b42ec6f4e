"""Labelled examples for tasks, from any format `specc.runtime.data.formats` reads.

Every record remembers where it was read (``file:line``, a JSON path for
SQuAD, a row for Parquet), so a missing field or an unknown label is reported
at its place, and every problem is found before training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from specc.runtime.data.formats import ReadOptions, Record, Table, format_of, read_table

__all__ = ["ReadOptions", "Record", "Splits", "Table", "format_of", "read_records", "read_table"]


def read_records(path: Path, fmt: str = "auto", text_field: str = "text") -> list[Record]:
    """Every record of a data file (the reader's notes left out: callers that report them use `read_table`)."""
    return read_table(path, fmt, ReadOptions(text_field=text_field)).records


@dataclass
class Splits:
    """A task's records: train, validation and test (files or a built-in demo)."""

    train: list[Record]
    validation: list[Record]
    test: list[Record]
    origin: str  # where the data came from, for the run's summary
    notes: list[str] = field(default_factory=list)  # what the readers decided or passed over, said before training
