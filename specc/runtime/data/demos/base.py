"""The demo registry: one `Demo` record per built-in data set, registered by the module that builds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from specc.registry import LazyRegistry

if TYPE_CHECKING:  # the records' module imports every file-format reader: loaded when a demo is built
    from specc.runtime.data.labelled import Splits


@dataclass(frozen=True)
class Demo:
    name: str
    task_type: str  # the task type its records are for (a name in the task registry)
    build: Callable[[], Splits]
    doc: str


# Each demo's module, imported when the demo is first looked up: checking a spec that names one loads that one only.
DEMOS: LazyRegistry[Demo] = LazyRegistry("demo", {
    "sentiment": "specc.runtime.data.demos.classify",
    "rating": "specc.runtime.data.demos.classify",
    "acceptability": "specc.runtime.data.demos.classify",
    "pairs": "specc.runtime.data.demos.classify",
    "ner": "specc.runtime.data.demos.grammar",
    "translation": "specc.runtime.data.demos.grammar",
    "qa": "specc.runtime.data.demos.reading",
})


def register(name: str, task_type: str, doc: str) -> Callable[[Callable[[], Splits]], Callable[[], Splits]]:
    """Decorator: register the function that builds demo `name`'s splits."""

    def add(build: Callable[[], Splits]) -> Callable[[], Splits]:
        DEMOS.register(Demo(name, task_type, build, doc))
        return build

    return add
