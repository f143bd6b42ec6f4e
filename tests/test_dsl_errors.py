"""DSL mistakes as files with their exact diagnostics: tests/dsl_errors/NN-name.spec → NN-name.expected.

Each `.spec` is checked with `specc check` (in-process, from the repository
root, path relative to it); its `.expected` file holds exactly what that prints
to stderr. Syntax mistakes and the semantic ones found later (schema, graph)
are both here, so the spans into `.spec` files are tested too. After changing
a message on purpose: ``python tests/test_dsl_errors.py --write``, then review
the diff.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("tests/dsl_errors")
CASES = sorted(p.name for p in (ROOT / CORPUS).glob("[0-9][0-9]-*.spec"))


def _check(name: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", str(CORPUS / name)])
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def test_corpus_has_at_least_twenty_mistakes_each_with_its_expected_text() -> None:
    assert len(CASES) >= 20
    for name in CASES:
        assert (ROOT / CORPUS / name.replace(".spec", ".expected")).exists(), f"{name} has no .expected file"
    numbers = [name[:2] for name in CASES]
    assert len(numbers) == len(set(numbers)), "two corpus files share a number"


@pytest.mark.parametrize("name", CASES)
def test_dsl_mistake_gives_its_exact_diagnostic(name: str) -> None:
    code, out, err = _check(name)
    assert "Traceback" not in err and "internal error" not in err
    assert code == 1 and out == ""
    assert err == (ROOT / CORPUS / name.replace(".spec", ".expected")).read_text(encoding="utf-8")


def test_every_diagnostic_names_its_spec_file() -> None:
    for name in CASES:
        first = _check(name)[2].splitlines()[0]
        assert first.startswith(f"{CORPUS / name}:") and "error[E" in first, first


if __name__ == "__main__" and "--write" in sys.argv:
    for case in CASES:
        (ROOT / CORPUS / case.replace(".spec", ".expected")).write_text(_check(case)[2], encoding="utf-8")
    print(f"wrote {len(CASES)} expected files")
