"""Heavy libraries imported on first use, so that commands which never touch them start at once.

`specc check` resolves a spec's objectives and tasks, whose modules also hold
their losses: they name torch at the top but use it only inside functions.
With `torch = lazy_import("torch")` (under `if not TYPE_CHECKING`, so mypy sees
the real module) torch is imported the first time an attribute is read, and
`"torch" in sys.modules` stays false until then (tests/test_startup.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module `name`; the first attribute read imports it."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module '{self._name}'{' (imported)' if self._module is not None else ''}>"


def lazy_import(name: str) -> Any:
    return LazyModule(name)
