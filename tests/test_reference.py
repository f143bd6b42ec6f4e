"""`specc ops` and docs/ops.md come from the registries' records, and say something for every op and parameter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from specc import reference
from specc.expr import ExprError, evaluate
from specc.frontend.dsl import parse_dsl_document
from specc.frontend.toml import parse_toml
from specc.ops import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
# Values for the [params] names the examples use, to validate their parameters.
SCOPE = {"d_model": 64, "heads": 4, "vocab": 100, "d_ff": 128, "max_seq": 32, "dropout": 0.1, "eps": 1e-5}
NODE_KEYS = {"tie"}  # keys of a node that are not the op's parameters


def test_docs_ops_md_is_generated_from_the_records() -> None:
    """Regenerate with `specc ops --markdown > docs/ops.md`."""
    assert (ROOT / "docs" / "ops.md").read_text() == reference.markdown()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_op_has_a_doc_a_shape_rule_an_example_and_meanings(name: str) -> None:
    entry = reference.op_entry(REGISTRY[name])
    assert entry.doc and entry.shape_rule and entry.toml and entry.dsl
    assert [p.name for p in entry.params if not p.meaning] == []


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_example_reads_the_same_in_toml_and_dsl_and_validates(name: str) -> None:
    entry = reference.op_entry(REGISTRY[name])
    toml = parse_toml("[model.nodes]\n" + entry.toml + "\n", "example.toml").data
    dsl = parse_dsl_document("model {\n" + entry.dsl + "\n}\n", "example.spec").raw.data
    assert toml == dsl
    (node,) = toml["model"]["nodes"].values()
    assert node["op"] == name
    params = {k: _value(v) for k, v in node.items() if k not in {"op", "in"} | NODE_KEYS}
    REGISTRY[name].params.model_validate(params)  # raises if a key or value does not fit
    inputs = node["in"] if isinstance(node["in"], (list, dict)) else [node["in"]]
    names = [i.name for i in REGISTRY[name].inputs]
    assert set(inputs) <= set(names) if isinstance(inputs, dict) else len(inputs) <= len(names)


def _value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return evaluate(value, SCOPE)
    except ExprError:  # not an expression of [params] names: a choice such as "rotary"
        return value


def test_objectives_and_task_types_say_what_they_need_and_what_each_key_means() -> None:
    entries = reference.objective_entries() + reference.task_entries()
    assert {e.name for e in entries} >= {"causal_lm", "mlm", "nsp", "classification", "translation"}
    for e in entries:
        assert e.doc and e.needs, e.name
        assert [p.name for p in e.params if not p.meaning] == [], e.name
    mlm = next(e for e in entries if e.name == "mlm")
    assert ("model inputs it feeds", "tokens, mlm_select") in mlm.needs
    assert ("fed too when the model declares them", "segments") in mlm.needs
    assert ("model outputs it reads", "mlm_logits") in mlm.needs
    assert [p.name for p in reference.common_task_keys() if not p.meaning] == []


def _ops(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "specc", "ops", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_specc_ops_lists_everything_and_shows_one_in_full() -> None:
    listing = _ops()
    assert listing.returncode == 0
    for name in [*REGISTRY, "mlm", "translation"]:
        assert f"  {name} " in listing.stdout
    one = _ops("rms_norm")
    assert one.returncode == 0
    assert one.stdout.splitlines()[0].startswith("rms_norm (op): RMSNorm")
    assert "    eps  float (> 0), default 1e-6: added to the mean square before the square root" in one.stdout
    assert '    norm_1 = { op = "rms_norm", in = "x", dim = "d_model" }' in one.stdout
    assert "    norm_1 = rms_norm(x, dim=d_model)" in one.stdout


def test_an_unknown_name_is_one_line_with_the_closest() -> None:
    done = _ops("atention")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("error: no op, objective or task type is named 'atention'; did you mean 'attention'? "
                           "(`specc ops` lists them)\n")


def test_the_readme_first_screen_points_to_specc_ops() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "specc ops" in first_screen and "docs/ops.md" in first_screen
