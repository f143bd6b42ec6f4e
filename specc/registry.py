"""Registries: the records of one kind (ops, objectives, task types, metrics, demos, HF families) by name.

Every kind registers the same way: the module that defines a record registers it when it is imported, and
its package's `__init__` imports each such module by name. Three mistakes fail loudly at import, never later:
- two records under one name (`RegistryError`);
- a module of a registering package that its `__init__` forgot to import (`Registry.complete`: a record
  there would otherwise be missing without a word);
- looking up a name nobody registered: a `KeyError` that names the kind and the closest registered name.
User-facing lookups (a spec naming an op, an objective, a task type) keep their own located diagnostics and
use `hint` for the did-you-mean.
"""

from __future__ import annotations

import pkgutil
import sys
from typing import Iterable, Protocol, TypeVar

from specc.diagnostics import did_you_mean


class Named(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=Named)


class RegistryError(Exception):
    """A programming error in how records are registered (a taken name, a module left unimported)."""


class Registry(dict[str, R]):
    """A dict from name to record of one `kind`; `register(record)` adds one under its own name."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, record: R) -> R:
        if record.name in self:
            raise RegistryError(f"{self.kind} '{record.name}' is registered twice")
        self[record.name] = record
        return record

    def hint(self, name: str) -> str | None:
        """`did you mean 'X'?` for a name that is not registered, when one is close."""
        return did_you_mean(name, self)

    def __missing__(self, name: str) -> R:
        hint = self.hint(name) if isinstance(name, str) else None
        raise KeyError(f"unknown {self.kind} {name!r}; " + (hint or f"known: {', '.join(sorted(self))}"))

    def complete(self, package: str, paths: Iterable[str], helpers: Iterable[str] = ()) -> None:
        """Raise `RegistryError` unless every module of `package` (at `paths`, its `__path__`) is imported:
        called at the end of a registering package's `__init__`, after its explicit import line. `helpers` are
        modules that register nothing and are imported later on purpose (torch-heavy code, tools)."""
        skip = set(helpers)
        missed = [m.name for m in pkgutil.iter_modules(list(paths))
                  if m.name not in skip and f"{package}.{m.name}" not in sys.modules]
        if missed:
            raise RegistryError(f"{package} does not import {', '.join(sorted(missed))}: add it to the import line "
                                f"of {package}/__init__.py, or its {self.kind} records are never registered")
