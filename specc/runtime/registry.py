"""A registry: records of one kind (objectives, task types) by name, each name registered once."""

from __future__ import annotations

from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=Named)


class Registry(dict[str, R]):
    """A dict from name to record; `register(record)` adds one under its own name, at import of its module."""

    def register(self, record: R) -> R:
        assert record.name not in self, record.name  # two records of one name: a programming error
        self[record.name] = record
        return record
