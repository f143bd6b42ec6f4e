"""Hostile spec text and `--set` values (issue 23, findings 3, 4, 5, 6 and 11's compile): a diagnostic, never a
traceback, a hang or an allocation of the whole machine.

* A key named `int`, `str`, `float` or `bool` was taken for one of pydantic's union tags and dropped from the
  error's location: an `IndexError` in schema/errors.py for every spec command, in TOML and the DSL.
* `extends` naming a FIFO blocked forever (a device, a folder: likewise refused).
* A `--set` value nested 3,000 deep was a `RecursionError`; `train.batch_size=100000` passed `check`, then took
  all memory; `train.betas=[2.0,2.0]` passed `check`, then was a traceback in the optimizer.
* A TOML date in a runtime section passed `check` and crashed `hash`, `diff` and the git textconv driver.
* `compile --set params.layers=4096` allocated before it refused, and under a memory limit raised `MemoryError`
  inside the very handler that reports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from reltools import assert_clean_error, run_main
from runtools import GPT_TINY, ROOT, SPECS, sets

SPEC_COMMANDS = ("check", "summary", "compile", "hash", "explain", "graph")
NO_SETS = {"hash"}  # and diff: they take no --set


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("gpt-tiny.toml", "gpt2-small.toml", "gpt-tiny.spec", "gpt2-small.spec"):
        shutil.copy(SPECS / name, tmp_path / name)
    return tmp_path


def _spec_commands(capsys: pytest.CaptureFixture[str], spec: Path, *extra: str) -> list[subprocess.CompletedProcess]:
    """Every spec command on `spec`; with `extra` (--set arguments), those that take them."""
    commands = [c for c in SPEC_COMMANDS if not extra or c not in NO_SETS]
    done = [run_main(capsys, command, str(spec), *extra) for command in commands]
    if not extra:
        done.append(run_main(capsys, "diff", str(spec), str(spec)))
    return done


def _diagnosed(done: subprocess.CompletedProcess, *fragments: str) -> None:
    """`check` is a clean error naming the fault. The other commands are either that, or (the commands of the
    architecture alone, given a fault in a runtime section they never read; `explain`, which shows a spec with
    errors as written after its diagnostics) a success without a traceback."""
    if done.args[0] == "check" or done.returncode != 0:
        assert_clean_error(done, *fragments)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr


# -- 3: keys named like pydantic's union tags ---------------------------------------------------------------------
TOML_PLACES = {"top level": ("", ""), "[model]": ("[model]\n", "model."), "[train]": ("[train]\n", "train."),
               "[tokenizer]": ("[tokenizer]\n", "tokenizer.")}


@pytest.mark.parametrize("key", ["int", "str", "float", "bool"])
@pytest.mark.parametrize("place", sorted(TOML_PLACES))
def test_a_key_named_like_a_type_is_an_unknown_key_in_toml(capsys: pytest.CaptureFixture[str], folder: Path, key: str,
                                                           place: str) -> None:
    header, _ = TOML_PLACES[place]
    spec = folder / "typed.toml"
    text = (folder / "gpt-tiny.toml").read_text()
    if not header:
        text = f"{key} = 1\n{text}"
    else:
        text = text.replace(header, f"{header}{key} = 1\n") if header in text else f"{text}\n{header}{key} = 1\n"
    spec.write_text(text)
    # every command at the top level (the architecture's commands read it); elsewhere check, which reads all
    found = _spec_commands(capsys, spec) if place == "top level" else [run_main(capsys, "check", str(spec))]
    for done in found:
        _diagnosed(done, f"error[E010]: unknown key '{key}'")


@pytest.mark.parametrize("key", ["int", "str", "float", "bool"])
def test_a_key_named_like_a_type_is_an_unknown_key_in_the_dsl(capsys: pytest.CaptureFixture[str], folder: Path,
                                                              key: str) -> None:
    spec = folder / "typed.spec"
    spec.write_text((folder / "gpt-tiny.spec").read_text() + f"\ntrain {{\n  {key} = 1\n}}\n")
    for done in _spec_commands(capsys, spec):
        _diagnosed(done, f"error[E010]: unknown key '{key}'")


def test_the_reported_minimal_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "k.toml"
    spec.write_text("format = 1\nint = 1\n")
    assert_clean_error(run_main(capsys, "check", str(spec)), "error[E010]: unknown key 'int'")


# -- 4: extends reads regular files only ----------------------------------------------------------------------------
def test_extends_naming_a_fifo_is_refused_without_blocking(cli: Callable[..., subprocess.CompletedProcess],
                                                           tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "base.toml")
    spec = tmp_path / "child.toml"
    spec.write_text('format = 1\nextends = "base.toml"\n')
    done = cli("check", str(spec), timeout=120)  # it used to block forever: a hang fails here, in a process of its own
    assert_clean_error(done, "error[E004]: 'extends' path 'base.toml' is not a regular file")


def test_extends_naming_a_folder_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "base.toml").mkdir()
    spec = tmp_path / "child.toml"
    spec.write_text('format = 1\nextends = "base.toml"\n')
    assert_clean_error(run_main(capsys, "check", str(spec)), "error[E004]: 'extends' path 'base.toml' is not a regular file")


def test_a_fifo_named_as_the_spec_is_refused_without_blocking(cli: Callable[..., subprocess.CompletedProcess],
                                                              tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "spec.toml")
    done = cli("check", str(tmp_path / "spec.toml"), timeout=120)
    assert_clean_error(done, "error[E002]: expected a spec file, found a named pipe (FIFO)")


def test_a_device_is_not_read_as_a_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    (tmp_path / "zero.toml").symlink_to("/dev/zero")  # endless: reading it would fill memory
    assert_clean_error(run_main(capsys, "check", str(tmp_path / "zero.toml")),
                       "error[E002]: expected a spec file, found a character device")


# -- 5: --set values --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("[" * 3000, "--set value nests arrays or tables more than 32 deep"),
    ("{a = " * 3000, "--set value nests arrays or tables more than 32 deep"),
    ("9" * 5000, "--set value is a number literal too long to be one"),
])
def test_a_hostile_set_value_is_a_diagnostic_in_every_spec_command(capsys: pytest.CaptureFixture[str], value: str,
                                                                   expected: str) -> None:
    for done in _spec_commands(capsys, Path(GPT_TINY), "--set", f"train.lr={value}"):
        _diagnosed(done, "error[E005]", expected)


def test_a_batch_beyond_the_machine_is_refused_by_check_with_its_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    done = run_main(capsys, "check", GPT_TINY, "--set", "train.batch_size=100000")
    assert_clean_error(done, "error[E083]: one micro-batch of 100,000 x 128 tokens needs at least ",
                       "GiB (6,656 activation values a token kept for the backward pass", "lower train.batch_size")
    assert run_main(capsys, "check", GPT_TINY, "--set", "train.batch_size=64").returncode == 0


def test_betas_the_optimizer_refuses_are_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    done = run_main(capsys, "train", GPT_TINY, "--out", str(tmp_path / "run"), "--quiet",
                    *sets("train.steps=1", "train.betas=[2.0,2.0]"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "train.betas" in done.stderr or "the optimizer refuses the [train] settings" in done.stderr, done.stderr


# -- 6: TOML dates -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1979-05-27", "1979-05-27T07:32:00Z", "07:32:00"])
def test_a_toml_date_is_refused_by_every_command_that_resolves_the_spec(capsys: pytest.CaptureFixture[str], folder: Path,
                                                                        value: str) -> None:
    spec = folder / "dated.toml"
    spec.write_text((folder / "gpt-tiny.toml").read_text().replace("[train]\n", f"[train]\nseed = {value}\n"))
    expected = "error[E001]: 'train.seed' is a TOML date or time, which no spec key takes"
    for done in _spec_commands(capsys, spec):
        _diagnosed(done, expected)
    textconv = run_main(capsys, "textconv", str(spec))
    assert textconv.returncode == 0 and "'train.seed' is a TOML date or time" in textconv.stdout, textconv
    assert_clean_error(run_main(capsys, "check", GPT_TINY, "--set", f"train.seed={value}"), expected)


# -- 11 (compile): refused before allocating -------------------------------------------------------------------------
def test_a_model_beyond_the_machine_is_refused_before_allocating(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from specc.compiler import compile as compiling

    asked: list[int] = []
    monkeypatch.setattr(compiling, "fits", lambda size, device: asked.append(size) or False)
    monkeypatch.setattr(torch.nn.Module, "to_empty", lambda *a, **k: pytest.fail("allocated before refusing"))
    done = run_main(capsys, "compile", GPT_TINY)
    assert_clean_error(done, "error[E050]: cannot allocate the model's parameters (0.0 GiB) on cpu")
    assert len(asked) == 1 and asked[0] > 4 * 1_000_000  # gpt-tiny's ~1.1 M fp32 parameters, counted on meta


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ulimit -v")
def test_compile_under_an_address_space_limit_refuses_cleanly(cli_env: dict[str, str]) -> None:
    """100 layers of gpt2-small (2.9 GiB) under a 3 GB address space: a clear E050, no MemoryError anywhere."""
    done = subprocess.run(["bash", "-c", f"ulimit -v 3000000; exec {sys.executable} -m specc compile "
                                         f"{SPECS / 'gpt2-small.toml'} --set params.layers=100"],
                          cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=300)
    assert_clean_error(done, "error[E050]: cannot allocate the model's parameters (2.9 GiB) on cpu")
    assert "MemoryError" not in done.stderr
