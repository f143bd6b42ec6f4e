"""Registries: the records of one kind (ops, objectives, task types, metrics, demos, HF families) by name.

Every kind registers the same way: the module that defines a record registers it when it is imported, and
its package's `__init__` imports each such module by name; or, for a `LazyRegistry` (task types, demos), a
table names each record's module, imported when the record is first looked up (a spec's check then imports
only what it names; tests/test_registry.py checks each table against its package's modules). Three mistakes
fail loudly at import, never later:
- two records under one name (`RegistryError`);
- a module of a registering package that its `__init__` forgot to import (`Registry.complete`: a record
  there would otherwise be missing without a word);
- looking up a name nobody registered: a `KeyError` that names the kind and the closest registered name.
User-facing lookups (a spec naming an op, an objective, a task type) keep their own located diagnostics and
use `hint` for the did-you-mean.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any, ItemsView, Iterable, Iterator, KeysView, Protocol, TypeVar, ValuesView

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


class LazyRegistry(Registry[R]):
    """A `Registry` whose records live in modules imported on first use: `modules` names, for each record, the
    module that registers it. Looking a name up (`[]`, `get`, `in`) imports only that record's module, so a spec
    naming one task type loads that type alone; anything that lists the records (iterating, `len`, `values`,
    `items`, the did-you-mean hint) imports them all first, and lists them in the table's order. The table must match the modules:
    `load_all` raises `RegistryError` when a module registers names other than the table says."""

    def __init__(self, kind: str, modules: dict[str, str]) -> None:
        super().__init__(kind)
        self.modules = modules

    def _load(self, name: object) -> None:
        module = self.modules.get(name) if isinstance(name, str) else None
        if module is not None and not dict.__contains__(self, name):
            importlib.import_module(module)

    def load_all(self) -> None:
        for module in dict.fromkeys(self.modules.values()):
            importlib.import_module(module)
        stray = set(dict.keys(self)) ^ set(self.modules)
        if stray:
            raise RegistryError(f"the {self.kind} table and the registered {self.kind}s differ: {', '.join(sorted(stray))}")

    def register(self, record: R) -> R:
        if dict.__contains__(self, record.name):
            raise RegistryError(f"{self.kind} '{record.name}' is registered twice")
        dict.__setitem__(self, record.name, record)
        return record

    def __contains__(self, name: object) -> bool:
        self._load(name)
        return dict.__contains__(self, name)

    def __missing__(self, name: str) -> R:
        self._load(name)
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        return super().__missing__(name)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        self._load(name)
        return dict.get(self, name, default)

    def _listed(self) -> dict[str, R]:
        """Every record, in the table's order (not the order of first lookups, so listings are stable)."""
        self.load_all()
        return {name: dict.__getitem__(self, name) for name in self.modules}

    def __iter__(self) -> Iterator[str]:
        return iter(self._listed())

    def __len__(self) -> int:
        self.load_all()
        return dict.__len__(self)

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        return self._listed().keys()

    def values(self) -> ValuesView[R]:  # type: ignore[override]
        return self._listed().values()

    def items(self) -> ItemsView[str, R]:  # type: ignore[override]
        return self._listed().items()
