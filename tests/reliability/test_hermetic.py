"""Spec hermeticity: compiling a spec imports nothing, runs no code, starts no process, reads no
environment variable and opens no file outside the spec's folder tree (and allowed search paths).

Hostile specs try each: code in strings and expressions, dotted op names,
environment references, and `extends` escaping by absolute path, `..`, a
symlinked file and a symlinked folder. They compile (strings are data) or end
in diagnostics; a marker file their code would write never appears. The
reference specs are watched too. The watching is a Python audit hook in a
process of its own (`hermetic_probe.py`): hooks cannot be removed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPECS = ROOT / "specs"
PROBE = HERE / "hermetic_probe.py"

Record = Callable[..., None]
TINY = 'format = 1\nextends = "gpt-tiny.toml"\n'
TINY_DSL = 'format = 1\nextends = "gpt-tiny.spec"\n'


def _cases(proj: Path, outside: Path, marker: Path) -> dict[str, tuple[str, str]]:
    """name → (file text, expected outcome: "model" or "diagnostics CODE")."""
    code = f"__import__('os').system('touch {marker}')"
    secret = outside / "secret.toml"
    return {
        "code-in-strings.toml": (TINY + f'name = "{code}"\ndescription = "{{{{ exec(open(\'{marker}\', \'w\')) }}}}"\n', "model"),
        "code-in-expression.toml": (TINY + f'[params]\nd_model = "{code}"\n', "diagnostics E020"),
        "dunder-attribute.toml": (TINY + '[params]\nd_model = "(1).__class__.__bases__"\n', "diagnostics E020"),
        "lambda.toml": (TINY + '[params]\nd_model = "(lambda: 128)()"\n', "diagnostics E020"),
        "open-call.toml": (TINY + f'[params]\nd_model = "open(\'{marker}\', \'w\')"\n', "diagnostics E020"),
        "dotted-op.toml": (TINY + '[model.nodes.drop]\nop = "os.system"\nin = "x"\n', "diagnostics E030"),
        "environment.toml": (TINY + 'name = "${HOME}"\n[params]\nd_model = "HOME"\n', "diagnostics E023"),
        "absolute-extends.toml": (f'format = 1\nextends = "{secret}"\n', "diagnostics E004"),
        "dotdot-extends.toml": ('format = 1\nextends = "../../outside/secret.toml"\n', "diagnostics E004"),
        "symlink-extends.toml": ('format = 1\nextends = "link.toml"\n', "diagnostics E004"),
        "symlinked-folder-extends.toml": ('format = 1\nextends = "linked/secret.toml"\n', "diagnostics E004"),
        "data-paths.toml": (TINY + '[data]\nsource = "text"\npath = "/etc/passwd"\n[tokenizer]\npath = "/etc/hostname"\n',
                            "model"),
        "code-in-strings.spec": (TINY_DSL + f'name = "{code}"\n', "model"),
        "code-in-expression.spec": (TINY_DSL + f"params {{\n  d_model = {code}\n}}\n", "diagnostics"),
        "absolute-extends.spec": (f'format = 1\nextends = "{secret}"\n', "diagnostics E004"),
        "symlink-extends.spec": ('format = 1\nextends = "link.toml"\n', "diagnostics E004"),
    }


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every hostile spec, an allowed search path and the reference specs, compiled under the audit hook."""
    tmp = tmp_path_factory.mktemp("hermetic")
    proj, outside, shared = tmp / "proj" / "specs", tmp / "outside", tmp / "shared"
    for folder in (proj, outside, shared):
        folder.mkdir(parents=True)
    marker = tmp / "MARKER"
    for name in ("gpt-tiny.toml", "gpt2-small.toml", "gpt-tiny.spec", "gpt2-small.spec"):
        (proj / name).write_bytes((SPECS / name).read_bytes())
    (outside / "secret.toml").write_text((SPECS / "gpt2-small.toml").read_text())
    (proj / "link.toml").symlink_to(outside / "secret.toml")
    (proj / "linked").symlink_to(outside, target_is_directory=True)
    (shared / "base.toml").write_text((SPECS / "gpt2-small.toml").read_text())
    cases = _cases(proj, outside, marker)
    for name, (text, _) in cases.items():
        (proj / name).write_text(text)
    (proj / "allowed.toml").write_text('format = 1\nextends = "../../shared/base.toml"\n')
    probes = [str(proj / n) for n in cases] + [f"{proj / 'allowed.toml'}::{shared}", str(proj / "allowed.toml")]
    probes += [str(p) for p in sorted(SPECS.iterdir())]
    warm = [str(p) for p in sorted(SPECS.iterdir())] + [str(p) for p in sorted((ROOT / "tests" / "bad_specs").glob("*.toml"))]
    warm += [str(p) for p in sorted((ROOT / "tests" / "dsl_errors").glob("*.spec"))]
    done = subprocess.run([sys.executable, str(PROBE), "--warm", *warm, "--probe", *probes], cwd=tmp, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return {"report": json.loads(done.stdout), "cases": cases, "proj": proj, "shared": shared, "outside": outside,
            "marker": marker}


def _violations(entry: dict[str, Any], roots: list[Path]) -> list[str]:
    bad = [f"{event}: {arg}" for event, arg in entry["events"] if not event.startswith(("open", "os.listdir", "os.scandir"))]
    for event, arg in entry["events"]:
        if event.startswith(("open", "os.listdir", "os.scandir")):
            real = Path(arg).resolve()
            if not any(real == r or r in real.parents for r in roots):
                bad.append(f"{event} outside the allowed folders: {arg}")
    bad += [f"read environment variable {name}" for name in entry["env"]]
    return bad


@pytest.mark.parametrize("name", sorted(_cases(Path("p"), Path("o"), Path("m"))))
def test_hostile_spec_is_refused_or_inert(probed: dict[str, Any], tally: Record, name: str) -> None:
    entry = probed["report"][str(probed["proj"] / name)]
    expected = probed["cases"][name][1]
    assert entry["outcome"].startswith(expected), entry["outcome"]
    assert not _violations(entry, [probed["proj"]]), entry
    opened = {Path(arg).resolve() for _, arg in entry["events"]}
    assert not any(probed["outside"].resolve() in p.parents for p in opened)  # the escaping base is never read
    assert not probed["marker"].exists()
    tally("hermeticity", hostile_specs=len(probed["cases"]), code_executions=int(probed["marker"].exists()))


def test_a_search_path_allows_a_base_outside_the_folder(probed: dict[str, Any]) -> None:
    allowed = str(probed["proj"] / "allowed.toml")
    refused = probed["report"][allowed]
    assert refused["outcome"] == "diagnostics E004"
    entry = probed["report"][f"{allowed}::{probed['shared']}"]
    assert entry["outcome"] == "model"
    assert not _violations(entry, [probed["proj"], probed["shared"]]), entry
    assert any(Path(arg).name == "base.toml" for _, arg in entry["events"])


def test_reference_specs_compile_hermetically(probed: dict[str, Any], tally: Record) -> None:
    watched = 0
    for spec in sorted(SPECS.iterdir()):
        entry = probed["report"][str(spec)]
        assert entry["outcome"] == "model", (spec.name, entry["outcome"])
        assert not _violations(entry, [SPECS]), (spec.name, entry)
        watched += 1
    tally("hermeticity", reference_specs=watched, violations=0)
