"""Text that ships with Python: the standard library's own docstrings, read from its source files.

The files are parsed with `ast` (nothing is imported or run), in name order,
so the result depends only on the Python version.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import platform
import random
import re
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from specc.atomic import write_text
from specc.runtime.errors import UserError
from specc.runtime.data.tokenizer import cache_dir

if TYPE_CHECKING:
    from specc.runtime.data.labelled import Splits

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"[a-z][a-z0-9_']*")


SKIP = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "tkinter", "ensurepip", "site-packages", "venv", "this",
        "antigravity", "pydoc_data"}


@functools.lru_cache(maxsize=1)
def stdlib_docstrings() -> tuple[tuple[str, str, str], ...]:
    """(module, name or "", docstring) of every module, top-level function, class and method with a
    docstring in the stdlib's source files (top level and one package level down), parsed once per
    Python version and cached."""
    root = Path(sysconfig.get_paths()["stdlib"])
    cached = cache_dir() / "demo" / f"stdlib-docstrings-{platform.python_version()}-{_digest(str(root))}.json"
    if cached.exists():
        return tuple(tuple(x) for x in json.loads(cached.read_text()))  # type: ignore[misc]
    files = sorted(root.glob("*.py")) + sorted(root.glob("*/*.py"))
    found: list[tuple[str, str, str]] = []
    for file in files:
        module = ".".join(file.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        if set(file.relative_to(root).parts[:-1]) & SKIP or file.stem in SKIP or any(p.startswith("_") for p in module.split(".")):
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
            continue
        found += _documented(tree, module)
    if len(found) < 1000:
        raise UserError(f"the demo data needs the standard library's source files with docstrings; found only {len(found)} "
                        f"under {root} (is this Python installed without its .py sources?)")
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text(cached, json.dumps(found))
    return tuple(found)


def _documented(tree: ast.Module, module: str) -> list[tuple[str, str, str]]:
    out = []
    doc = ast.get_docstring(tree)
    if doc:
        out.append((module, "", doc))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            doc = ast.get_docstring(node)
            if doc:
                out.append((module, node.name, doc))
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, ast.FunctionDef) and not sub.name.startswith("_"):
                        doc = ast.get_docstring(sub)
                        if doc:
                            out.append((module, f"{node.name}.{sub.name}", doc))
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def sentences(min_words: int = 6, max_words: int = 18) -> list[str]:
    """Distinct prose sentences of every docstring, as lower-case words joined by single spaces."""
    seen: set[str] = set()
    out = []
    for _, _, doc in stdlib_docstrings():
        for para in doc.split("\n\n"):
            flat = " ".join(para.split())
            if not _prose(flat):
                continue
            for sentence in _SENTENCE_END.split(flat):
                words = sentence.lower().rstrip(".!?").split()
                if not min_words <= len(words) <= max_words or not all(WORD.fullmatch(w.strip(",;:")) for w in words):
                    continue
                text = " ".join(w.strip(",;:") for w in words)
                if text not in seen:
                    seen.add(text)
                    out.append(text)
    return out


def _prose(text: str) -> bool:
    return not any(mark in text for mark in (">>>", "::", "`", "(", "{", "[", "=", "*", "|", "#", "\\", "<", "%", "$"))


def split(rows: list[dict], sizes: tuple[int, int, int], demo: str) -> Splits:
    """Shuffle with a seed fixed by the demo's name; cut into train, validation and test of at most `sizes`."""
    rng = random.Random(demo)
    rows = list(rows)
    rng.shuffle(rows)
    n_val, n_test = sizes[1], sizes[2]
    if len(rows) < n_val + n_test + 100:
        raise UserError(f"demo '{demo}' found only {len(rows)} examples in this Python's standard library")
    return splits(demo, rows[n_val + n_test :][: sizes[0]], rows[:n_val], rows[n_val : n_val + n_test])


def splits(demo: str, train: list[dict], validation: list[dict], test: list[dict]) -> Splits:
    from specc.runtime.data.labelled import Record, Splits  # here: the records' module imports every file-format reader

    def records(rows: list[dict], part: str) -> list[Record]:
        return [Record(row, f"demo {demo}, {part} #{i}") for i, row in enumerate(rows)]

    return Splits(records(train, "train"), records(validation, "validation"), records(test, "test"), f"demo {demo}")
