"""The bad-spec corpus: every file in tests/bad_specs/ is a user mistake with its exact diagnostic text.

`NN-name.toml` is checked with `specc check` (run from the repository root, with
the path relative to it, plus the arguments in `NN-name.args`, one per line, if
that file exists); `NN-name.expected` holds exactly what it prints to stderr.
After changing a message on purpose, rewrite the expected files with
``python tests/test_bad_specs.py --write`` and review the diff.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("tests/bad_specs")
CASES = sorted(p.name for p in (ROOT / CORPUS).glob("[0-9][0-9]-*.toml"))


def _argv(name: str) -> list[str]:
    args_file = ROOT / CORPUS / name.replace(".toml", ".args")
    extra = args_file.read_text().splitlines() if args_file.exists() else []
    return ["check", str(CORPUS / name), *extra]


@functools.lru_cache(maxsize=None)  # the corpus does not change during a run
def _run(name: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `specc check` on a corpus file, run in-process from the repo root."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(_argv(name))
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def test_corpus_is_large_and_complete() -> None:
    assert len(CASES) >= 25
    for name in CASES:
        assert (ROOT / CORPUS / name.replace(".toml", ".expected")).exists(), f"{name} has no .expected file"
    numbers = [name[:2] for name in CASES]
    assert len(numbers) == len(set(numbers)), "two corpus files share a number"


@pytest.mark.parametrize("name", CASES)
def test_bad_spec(name: str) -> None:
    code, out, err = _run(name)
    expected = (ROOT / CORPUS / name.replace(".toml", ".expected")).read_text()
    assert "Traceback" not in err and "internal error" not in err
    assert code == 1
    assert out == ""
    assert err == expected


@pytest.mark.parametrize("name", ["01-toml-syntax.toml", "33-three-graph-mistakes.toml"])
def test_bad_spec_subprocess(name: str) -> None:
    """The installed entry point behaves the same as `main`: exit 1, the expected text, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "specc", *_argv(name)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr == (ROOT / CORPUS / name.replace(".toml", ".expected")).read_text()


@pytest.mark.parametrize("name, count", [("32-three-mistakes.toml", 3), ("33-three-graph-mistakes.toml", 3),
                                         ("37-set-bad-value.toml", 2), ("39-bool-for-int.toml", 2)])
def test_a_stage_reports_every_mistake(name: str, count: int) -> None:
    _, _, err = _run(name)
    assert err.count("error[") == count


def test_every_diagnostic_has_a_code_and_a_place() -> None:
    """Each header reads `place: error[EXXX]: message`; one with line:col is followed by its source line and a caret."""
    header = re.compile(r"^(?P<where>.+?)(?::(?P<line>\d+):(?P<col>\d+))?: error\[E\d{3}\]: \S")
    for name in CASES:
        _, _, err = _run(name)
        lines = err.splitlines()
        headers = [i for i, line in enumerate(lines) if "error[E" in line]
        assert headers, name
        for i in headers:
            match = header.match(lines[i])
            assert match, lines[i]
            if match["line"]:
                assert int(match["line"]) > 0 and int(match["col"]) > 0
                assert re.match(rf"^\s*{match['line']} \| ", lines[i + 1]), lines[i + 1]
                assert lines[i + 2].strip() and set(lines[i + 2].strip()) == {"^"}, lines[i + 2]


def _write_expected() -> None:
    for name in CASES:
        code, _, err = _run(name)
        assert code == 1, f"{name} exited {code}"
        (ROOT / CORPUS / name.replace(".toml", ".expected")).write_text(err)
        print(f"wrote {name.replace('.toml', '.expected')}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        _write_expected()
    else:
        print(__doc__)
