"""Front-end fuzzing: every input compiles or yields located diagnostics, and no stage hangs.

Three sources of inputs, all through `spec_fuzz.check_input` (the stages of
`specc check`, `compile`, `fmt` and `convert`, each with a generous hang guard; speed is not asserted):

- the hostile inputs issue 9 names, in both front ends (deep nesting, huge
  numbers, `1e309`, NUL bytes, invalid UTF-8, long lines, expression bombs);
- hypothesis, drawing mutations of the real specs (so failures shrink);
- a seeded raw-bytes mutator over the real specs: `SPECC_FUZZ_INPUTS` inputs
  (CI default 400), seed `SPECC_FUZZ_SEED` (fixed unless given, so CI is
  repeatable; the long campaigns explore other seeds).

The long campaign (`--runslow`, `SPECC_FUZZ_LONG_INPUTS`, default 20,000) is
the same mutator, longer; `python tests/reliability/spec_fuzz.py` runs one
outside pytest.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spec_fuzz

CI_INPUTS = int(os.environ.get("SPECC_FUZZ_INPUTS", "400"))
LONG_INPUTS = int(os.environ.get("SPECC_FUZZ_LONG_INPUTS", "20000"))
EXAMPLES = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "150"))
SEEDS = spec_fuzz.seeds()
Record = Callable[..., None]  # the `tally` fixture


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real specs copied to a scratch folder, each checked once (imports paid before timing)."""
    return spec_fuzz.spec_folder(tmp_path_factory.mktemp("fuzz"))


def _seed() -> int:
    return int(os.environ.get("SPECC_FUZZ_SEED", "2048381214"))


# -- the inputs the issue names ------------------------------------------------------------------
DEEP = 100_000
HOSTILE = {
    "deep arrays": (b"x = " + b"[" * DEEP + b"]" * DEEP, b"x = " + b"[" * DEEP + b"]" * DEEP),
    "deep tables": (b"x = " + b"{a = " * DEEP + b"1" + b"}" * DEEP, b"a { " * DEEP + b"}" * DEEP),
    "deep parentheses": (b'[params]\nx = "' + b"(" * DEEP + b"1" + b")" * DEEP + b'"',
                         b"params {\n x = " + b"(" * DEEP + b"1" + b")" * DEEP + b"\n}"),
    "huge integer": (b"format = 1\n[params]\nx = " + b"9" * 100_000, b"format = 1\nparams {\n x = " + b"9" * 100_000 + b"\n}"),
    "1e309": (b"format = 1\n[params]\nx = 1e309\n", b"format = 1\nparams {\n x = 1e309\n}\n"),
    "NUL bytes": (b'format = 1\nname = "a\x00b"\n\x00', b'format = 1\nname = "a\x00b"\n\x00'),
    "invalid UTF-8": (b'format = 1\nname = "\xff\xfe"\n', b'format = 1\nname = "\xff\xfe"\n'),
    "lone surrogate": (b'format = 1\nname = "\xed\xa0\x80"\n', b'format = 1\nname = "\xed\xa0\x80"\n'),
    "very long line": (b"format = 1\nname = \"" + b"a" * 1_000_000 + b"\"\n", b"format = 1\nname = \"" + b"a" * 1_000_000 + b"\"\n"),
    "expression bomb": (b'format = 1\n[params]\nx = "2 ** 2 ** 2 ** 64"\n', b"format = 1\nparams {\n x = 2 ** 2 ** 2 ** 64\n}\n"),
    "factorial-sized power": (b'format = 1\n[params]\nx = "9 ** 9 ** 9"\n', b"format = 1\nparams {\n x = 9 ** 9 ** 9\n}\n"),
    "long expression": (b'format = 1\n[params]\nx = "' + b"1 + " * 50_000 + b'1"\n',
                        b"format = 1\nparams {\n x = " + b"1 + " * 50_000 + b"1\n}\n"),
    # just under the 128 K characters a spec may have, so the parsers' own guards answer
    "deep arrays (60 K)": (b"x = " + b"[" * 60_000 + b"]" * 60_000, b"x = " + b"[" * 60_000 + b"]" * 60_000),
    "long expression (100 K)": (b'format = 1\n[params]\nx = "' + b"1 + " * 25_000 + b'1"\n',
                                b"format = 1\nparams {\n x = " + b"1 + " * 25_000 + b"1\n}\n"),
    "40,000-element array": (b"format = 1\nx = [" + b"1," * 40_000 + b"]\n", b"format = 1\nx = [" + b"1," * 40_000 + b"]\n"),
}


def _with_repeat(suffix: str) -> bytes:
    """gpt2-small with its layer repeat set to 10**12."""
    text = SEEDS[f"gpt2-small{suffix}"]
    return text.replace(b"layers = 12", b'layers = "10 ** 12"' if suffix == ".toml" else b"layers = 10 ** 12")


@pytest.mark.parametrize("suffix", [".toml", ".spec"])
@pytest.mark.parametrize("case", sorted(HOSTILE) + ["repeat 10**12", "extends /etc/passwd", "extends ../..", "extends NUL",
                                  "empty"])
def test_hostile_input_gives_located_diagnostics(folder: Path, case: str, suffix: str) -> None:
    if case == "repeat 10**12":
        data = _with_repeat(suffix)
        assert data != SEEDS[f"gpt2-small{suffix}"]
    elif case.startswith("extends"):
        target = {"extends /etc/passwd": "/etc/passwd", "extends ../..": "../../specs/gpt2-small.toml",
                  "extends NUL": "gpt2-small.toml\\u0000.x"}[case]
        data = f'format = 1\nextends = "{target}"\nname = "x"\n'.encode()
    elif case == "empty":
        data = b""
    else:
        data = HOSTILE[case][suffix == ".spec"]
    outcome = spec_fuzz.check_input(data, suffix, folder)
    assert outcome.kind == "diagnostics", outcome


# -- hypothesis over the real specs --------------------------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SEEDS)), rnd=st.randoms(use_true_random=False))
def test_mutated_spec_compiles_or_gives_located_diagnostics(folder: Path, name: str, rnd: random.Random) -> None:
    data = spec_fuzz.mutate(SEEDS[name], rnd, list(SEEDS.values()))
    outcome = spec_fuzz.check_input(data, Path(name).suffix, folder)
    assert outcome.kind != "finding", (outcome, data[:2000])


# -- the seeded mutator: a CI-sized campaign and a long one --------------------------------------
def _campaign(folder: Path, tally: Record, count: int, name: str) -> None:
    seed = _seed()
    found = spec_fuzz.Tally()
    for source, data in spec_fuzz.fuzz_inputs(count, seed):
        found.add(spec_fuzz.check_input(data, Path(source).suffix, folder), source, data)
    tally(name, seed=seed, **{k: v for k, v in found.as_dict().items() if k != "findings"},
          findings=len(found.findings))
    shown = "\n".join(f"  {f['seed']} [{f['stage']}] {f['detail']}\n    {f['input'][:200]!r}" for f in found.findings[:10])
    assert not found.findings, f"SPECC_FUZZ_SEED={seed}: {found.line()}\n{shown}"
    assert found.kinds["model"] > 0 and found.kinds["diagnostics"] > 0  # the mutations neither all break nor all miss


def test_fuzz_campaign(folder: Path, tally: Record) -> None:
    _campaign(folder, tally, CI_INPUTS, "fuzz (CI)")


@pytest.mark.slow
def test_long_fuzz_campaign(folder: Path, tally: Record) -> None:
    _campaign(folder, tally, LONG_INPUTS, "fuzz (long)")
