"""Where `extends` finds a base: the spec's folder, the search paths (--search-path, SPECC_PATH), the shipped specs."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from specc.cli import main
from specc.diagnostics import SpecError
from specc.frontend import parse
from specc.frontend.bases import SHIPPED, shipped_specs

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BASE = 'format = 1\nname = "{name}"\n\n[params]\nd_model = 64\n'


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _error(path: Path, **kw: object) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(path, **kw)  # type: ignore[arg-type]
    return info.value


def test_the_source_checkout_ships_its_specs_folder() -> None:
    assert shipped_specs() == SPECS.resolve()


def test_a_copied_spec_extends_a_shipped_spec_by_name(tmp_path: Path) -> None:
    """The issue's case: copy a task spec into your own folder; `check` passes and `explain` says which file it read."""
    mine = tmp_path / "my-translate.toml"
    shutil.copy(SPECS / "gpt-tiny-translate.toml", mine)
    assert run("check", str(mine)) == (0, "", "")
    code, out, _ = run("explain", str(mine), "extends")
    first, second = out.splitlines()
    assert code == 0
    assert first == f'extends "gpt-tiny.toml" → {SPECS.resolve() / "gpt-tiny.toml"}  # named in {mine}; found in {SHIPPED}'
    assert second.startswith(f'extends "gpt2-small.toml" → {SPECS.resolve() / "gpt2-small.toml"}')
    # the whole explanation starts with the chain too
    assert run("explain", str(mine))[1].splitlines()[:2] == [first, second]


def test_the_library_form_names_only_shipped_specs(tmp_path: Path) -> None:
    _write(tmp_path, "gpt-tiny.toml", BASE.format(name="a local file of the same name"))
    toml = parse(_write(tmp_path, "a.toml", 'extends = "specc:gpt-tiny"\n'))
    assert toml.data["name"] == "gpt-tiny" and toml.bases[0].file == str(SPECS.resolve() / "gpt-tiny.toml")
    dsl = parse(_write(tmp_path, "b.toml", 'extends = "specc:gpt-tiny.spec"\n'))
    assert dsl.bases[0].file == str(SPECS.resolve() / "gpt-tiny.spec") and dsl.data["params"]["d_model"] == 128
    for ref, words in (("specc:nope", "base spec 'specc:nope' not found"),
                       ("specc:../specs/gpt-tiny.toml", "is not the name of a shipped spec"), ("specc:", "not the name")):
        (d,) = _error(_write(tmp_path, "c.toml", f'extends = "{ref}"\n')).diagnostics
        assert d.code == "E004" and words in d.message, d


def test_order_spec_folder_then_search_paths_then_shipped(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    child = _write(tmp_path / "proj", "child.toml", 'extends = "gpt-tiny.toml"\n')
    assert parse(child).data["name"] == "gpt-tiny"  # only the shipped one exists
    _write(second, "gpt-tiny.toml", BASE.format(name="second"))
    assert parse(child, search_paths=[first, second]).data["name"] == "second"
    _write(first, "gpt-tiny.toml", BASE.format(name="first"))
    raw = parse(child, search_paths=[first, second])
    assert raw.data["name"] == "first" and raw.bases[0].found_in == f"search path {first.resolve()}"
    _write(tmp_path / "proj", "gpt-tiny.toml", BASE.format(name="own"))
    raw = parse(child, search_paths=[first, second])
    assert raw.data["name"] == "own" and raw.bases[0].found_in == "the spec's folder"


def test_specc_path_is_searched_after_the_search_path_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag, env1, env2 = tmp_path / "flag", tmp_path / "env1", tmp_path / "env2"
    _write(env2, "common.toml", BASE.format(name="from env2"))
    child = _write(tmp_path / "proj", "child.toml", 'extends = "common.toml"\n')
    monkeypatch.setenv("SPECC_PATH", f"{env1}{os.pathsep}{os.pathsep}{env2}")
    assert run("explain", str(child), "name")[:2] == (0, f'name = "from env2"  # {env2 / "common.toml"}:2:8 (base file)\n')
    _write(flag, "common.toml", BASE.format(name="from the flag"))
    assert "from the flag" in run("explain", str(child), "name", "--search-path", str(flag))[1]
    monkeypatch.delenv("SPECC_PATH")
    code, _, err = run("check", str(child))
    assert code == 1 and "base spec 'common.toml' not found" in err and "SPECC_PATH" in err


def test_parse_itself_reads_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SPECC_PATH is the command line's: the library's `parse` stays hermetic (tests/reliability checks reads)."""
    _write(tmp_path / "env", "common.toml", BASE.format(name="env"))
    monkeypatch.setenv("SPECC_PATH", str(tmp_path / "env"))
    assert "not found" in _error(_write(tmp_path / "proj", "c.toml", 'extends = "common.toml"\n')).diagnostics[0].message


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_an_escaping_link_is_an_error_not_shadowed_by_a_shipped_spec(tmp_path: Path) -> None:
    _write(tmp_path / "outside", "gpt-tiny.toml", BASE.format(name="outside"))
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "gpt-tiny.toml").symlink_to(tmp_path / "outside" / "gpt-tiny.toml")
    (d,) = _error(_write(proj, "c.toml", 'extends = "gpt-tiny.toml"\n')).diagnostics
    assert d.code == "E004" and "leaves the spec's folder" in d.message


def test_extends_reads_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "folder.toml").mkdir()
    (d,) = _error(_write(tmp_path, "c.toml", 'extends = "folder.toml"\n')).diagnostics
    assert d.code == "E004" and "is not a regular file" in d.message
    if hasattr(os, "mkfifo"):  # reading a pipe would block: it is refused unread
        os.mkfifo(tmp_path / "pipe.toml")
        (d,) = _error(_write(tmp_path, "c.toml", 'extends = "pipe.toml"\n')).diagnostics
        assert d.code == "E004" and "is not a regular file" in d.message


@pytest.mark.slow
def test_a_wheel_carries_the_reference_specs(tmp_path: Path) -> None:
    """A non-editable install has every spec of specs/ as package data, and `extends` finds them by name there."""
    src = tmp_path / "src"  # a copy: setuptools writes build/ and *.egg-info beside the sources it builds
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("specc", "specs"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("specc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"specc/specs/{p.name}" for p in SPECS.iterdir() if p.suffix in (".toml", ".spec")} <= names
    target = tmp_path / "target"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    mine = tmp_path / "mine" / "x.toml"
    mine.parent.mkdir()
    shutil.copy(SPECS / "gpt-tiny-translate.toml", mine)
    out = subprocess.run([sys.executable, "-m", "specc", "explain", str(mine), "extends"], cwd=tmp_path, text=True,
                         capture_output=True, timeout=300, env={**os.environ, "PYTHONPATH": str(target)})
    assert out.returncode == 0, out.stderr
    assert f"→ {target / 'specc' / 'specs' / 'gpt-tiny.toml'}" in out.stdout


# -- convert -o: a relative `extends` still names the same base from the new folder --------------------------------
def _proj(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    (proj / "lib").mkdir(parents=True)
    shutil.copy(SPECS / "gpt2-small.toml", proj / "lib" / "base.toml")
    shutil.copy(SPECS / "gpt2-small.toml", proj / "base.toml")
    _write(proj, "child.toml", 'format = 1\nextends = "lib/base.toml"\nname = "child"\n')
    _write(proj, "top.toml", 'format = 1\nextends = "base.toml"\nname = "top"\n')
    return proj


def _extends(path: Path) -> str:
    (line,) = [x for x in path.read_text().splitlines() if x.startswith("extends")]
    return line.split("=", 1)[1].strip().strip('"')


def test_convert_rewrites_a_relative_extends_for_the_output_folder(tmp_path: Path) -> None:
    proj = _proj(tmp_path)
    assert run("convert", str(proj / "child.toml"), "-o", str(proj / "lib" / "child.spec")) == (0, "", "")
    assert _extends(proj / "lib" / "child.spec") == "base.toml"
    assert run("check", str(proj / "lib" / "child.spec")) == (0, "", "")
    # deeper: the path must leave the new folder, so the note says which --search-path checks it
    code, _, err = run("convert", str(proj / "top.toml"), "-o", str(proj / "deep" / "top.spec"))
    assert code == 1 and "cannot write" in err  # no such folder: a clean error, nothing written
    (proj / "deep").mkdir()
    code, _, err = run("convert", str(proj / "top.toml"), "-o", str(proj / "deep" / "top.spec"))
    assert code == 0 and _extends(proj / "deep" / "top.spec") == "../base.toml"
    assert err == f"note: extends '../base.toml' leaves the folder of {proj / 'deep' / 'top.spec'}: check it with --search-path {proj}\n"
    assert run("check", str(proj / "deep" / "top.spec"), "--search-path", str(proj)) == (0, "", "")
    # and back again
    assert run("convert", str(proj / "deep" / "top.spec"), "-o", str(proj / "back.toml"))[0] == 0
    assert _extends(proj / "back.toml") == "base.toml"
    # stdout: the file as written
    assert 'extends = "lib/base.toml"' in run("convert", str(proj / "child.toml"))[1]


def test_convert_names_a_shipped_base_by_its_library_name_and_keeps_other_roots(tmp_path: Path) -> None:
    assert run("convert", str(SPECS / "gpt-tiny.toml"), "-o", str(tmp_path / "tiny.spec"))[0] == 0
    assert _extends(tmp_path / "tiny.spec") == "specc:gpt2-small.toml"
    assert run("check", str(tmp_path / "tiny.spec")) == (0, "", "")
    mine = _write(tmp_path / "a", "mine.toml", 'format = 1\nextends = "gpt-tiny.toml"\n')  # found among the shipped specs
    assert run("convert", str(mine), "-o", str(tmp_path / "mine.spec"))[0] == 0
    assert _extends(tmp_path / "mine.spec") == "gpt-tiny.toml"
    lost = _write(tmp_path / "a", "lost.toml", 'format = 1\nextends = "nope.toml"\n')
    code, _, err = run("convert", str(lost), "-o", str(tmp_path / "lost.spec"))
    assert code == 0 and _extends(tmp_path / "lost.spec") == "nope.toml"
    assert err == "note: extends 'nope.toml' is kept as written: base spec 'nope.toml' not found\n"
