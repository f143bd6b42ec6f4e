"""The architecture hash: invariant under how a spec is written, sensitive to what it means (property tests)."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from specc.canonical import architecture_hash, canonical_graph, hashes, section_hashes
from specc.cli import main
from specc.diagnostics import SpecError
from specc.expr import ExprError, names_in
from specc.frontend import parse, parse_text
from specc.graph import build_graph
from specc.schema import validate

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL = sorted(p.name for p in SPECS.glob("*.toml"))
MERGED = {name: parse(SPECS / name).data for name in ALL}  # `extends` resolved, so each stands alone
BASELINE = {name: architecture_hash(validate(parse(SPECS / name))) for name in ALL}
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


# -- a TOML writer that varies everything that carries no meaning ------------------------------
def to_toml(data: dict[str, Any], rnd: random.Random | None = None) -> str:
    """`data` as TOML; with `rnd`, keys shuffled, tables inline or not, comments, spacing and number forms varied."""
    lines: list[str] = []
    _table(data, (), lines, rnd)
    return "\n".join(lines) + "\n"


def _table(table: dict[str, Any], path: tuple[str, ...], lines: list[str], rnd: random.Random | None) -> None:
    items = list(table.items())
    if rnd:
        rnd.shuffle(items)
    later = [(k, v) for k, v in items if isinstance(v, dict) and (rnd is None or rnd.random() < 0.6)]
    for key, value in items:
        if (key, value) in later:
            continue
        sep = rnd.choice(["=", " = ", "  =\t"]) if rnd else " = "
        comment = rnd.choice(["", "", "  # a comment", "#x = 1"]) if rnd else ""
        lines.append(f"{_key(key)}{sep}{_value(value, rnd)}{' ' + comment if comment.startswith('#x') else comment}")
        if rnd and rnd.random() < 0.15:
            lines.append(rnd.choice(["", "# key = 'a comment, not a value'", "   "]))
    for key, value in later:
        lines += ["", f"[{'.'.join(_key(k) for k in path + (key,))}]"]
        _table(value, path + (key,), lines, rnd)


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any, rnd: random.Random | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if rnd and abs(value) >= 1000 and rnd.random() < 0.5 else str(value)
    if isinstance(value, float):
        return rnd.choice([repr(value), f"{value:.17e}"]) if rnd else repr(value)
    if isinstance(value, str):
        literal = rnd and "'" not in value and "\\" not in value and "\n" not in value and rnd.random() < 0.5
        return f"'{value}'" if literal else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, rnd) for v in value) + "]"
    items = list(value.items())
    if rnd:
        rnd.shuffle(items)
    return "{ " + ", ".join(f"{_key(k)} = {_value(v, rnd)}" for k, v in items) + " }" if items else "{}"


def arch_hash(text: str) -> str:
    return architecture_hash(validate(parse_text(text, "spec.toml")))


# -- invariance ---------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.sampled_from(ALL), seed=st.integers(0, 2**32 - 1))
def test_hash_ignores_formatting_comments_and_key_order(spec: str, seed: int) -> None:
    text = to_toml(MERGED[spec], random.Random(seed))
    assert arch_hash(text) == BASELINE[spec], text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.sampled_from(ALL), seed=st.integers(0, 2**32 - 1))
def test_hash_is_the_same_through_the_dsl_front_end(spec: str, seed: int) -> None:
    """A spec (written any which way) converted to the DSL hashes as its TOML form."""
    formats = pytest.importorskip("specc.frontend.formats")
    dsl = formats.convert_text(to_toml(MERGED[spec], random.Random(seed)), "spec.toml", ".spec")
    assert architecture_hash(validate(parse_text(dsl, "spec.spec"))) == BASELINE[spec], dsl


@pytest.mark.parametrize("spec", ALL)
def test_a_spec_and_its_resolved_standalone_form_hash_alike(spec: str) -> None:
    """`extends` resolved by hand (one self-contained file) changes nothing."""
    assert arch_hash(to_toml(MERGED[spec])) == BASELINE[spec]


def _edited(spec: str, edit: Any) -> str:
    data = copy.deepcopy(MERGED[spec])
    edit(data)
    return arch_hash(to_toml(data))


def test_how_a_value_is_written_does_not_matter() -> None:
    def literal_ffn(d: dict) -> None:
        d["params"]["d_ff"] = 3072  # was "4 * d_model"

    def explicit_defaults(d: dict) -> None:
        d["blocks"]["decoder_layer"]["nodes"]["attn"]["bias"] = True
        d["blocks"]["decoder_layer"]["nodes"]["mlp"]["dropout"] = 0.0

    def renamed_param(d: dict) -> None:
        d["params"]["width"] = d["params"].pop("d_model")
        d["params"]["d_ff"] = "4 * width"
        for node in list(d["blocks"]["decoder_layer"]["nodes"].values()) + list(d["model"]["nodes"].values()):
            for key, value in node.items():
                if value == "d_model":
                    node[key] = "width"

    def renamed_block_and_label(d: dict) -> None:
        d["blocks"]["layer"] = d["blocks"].pop("decoder_layer")
        d["model"]["nodes"]["h"]["block"] = "layer"
        d["name"], d["description"] = "another name", "another description"

    def unused_param(d: dict) -> None:
        d["params"]["never_read"] = 12345

    base = BASELINE["gpt2-small.toml"]
    for edit in (literal_ffn, explicit_defaults, renamed_param, renamed_block_and_label, unused_param):
        assert _edited("gpt2-small.toml", edit) == base, edit.__name__


def test_runtime_sections_have_their_own_hashes() -> None:
    spec = validate(parse(SPECS / "gpt-tiny.toml"))
    faster = validate(parse(SPECS / "gpt-tiny.toml", ["train.lr=0.01"]))
    other_objective = validate(parse(SPECS / "gpt-tiny.toml", ["objective.causal_lm.weight=2.0"]))
    assert architecture_hash(faster) == architecture_hash(spec)
    before, after = section_hashes(spec), section_hashes(faster)
    assert before["train"] != after["train"]
    assert {k: v for k, v in before.items() if k != "train"} == {k: v for k, v in after.items() if k != "train"}
    assert section_hashes(other_objective)["objective"] != before["objective"]
    assert set(hashes(build_graph(spec))) == {"architecture", "tokenizer", "data", "objective", "train"}


# -- sensitivity ------------------------------------------------------------------------------
def _used_params(data: dict[str, Any]) -> set[str]:
    """[params] names the architecture reads: referenced from blocks, model or init, directly or via other params."""
    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    def refs(text: str) -> set[str]:
        try:
            return set(names_in(text))
        except ExprError:
            return set()

    params = data.get("params", {})
    todo = [n for part in ("blocks", "model", "init") for s in strings(data.get(part, {})) for n in refs(s)]
    used: set[str] = set()
    while todo:
        name = todo.pop()
        if name in params and name not in used:
            used.add(name)
            todo += [n for s in strings(params[name]) for n in refs(s)]
    return used


def _node_tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    tables = list(data["model"]["nodes"].values())
    return tables + [n for b in data.get("blocks", {}).values() for n in b["nodes"].values()]


def _mutations(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """(description, edit) pairs, each a change of meaning if the result is a valid spec."""
    resolved = validate(parse_text(to_toml(data), "spec.toml")).params
    out: list[tuple[str, Any]] = []
    for name in sorted(_used_params(data)):
        value = resolved[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        new = value * 2 if isinstance(value, int) else value * 0.5 + 1e-3
        out.append((f"params.{name} {value} → {new}", lambda d, n=name, v=new: d["params"].__setitem__(n, v)))
    for i, node in enumerate(_node_tables(data)):
        for key, value in node.items():
            if isinstance(value, bool):
                out.append((f"node {i} {key} flipped", lambda d, i=i, k=key: _node_tables(d)[i].__setitem__(k, not _node_tables(d)[i][k])))
            elif key == "activation":
                other = "relu" if value != "relu" else "silu"
                out.append((f"node {i} activation → {other}", lambda d, i=i, o=other: _node_tables(d)[i].__setitem__("activation", o)))
            elif key == "repeat":
                out.append((f"node {i} repeat + 1", lambda d, i=i: _node_tables(d)[i].__setitem__("repeat", f"({_node_tables(d)[i]['repeat']}) + 1")))
            elif key == "op" and value in ("layer_norm", "rms_norm"):
                other = "rms_norm" if value == "layer_norm" else "layer_norm"
                out.append((f"node {i} op → {other}", lambda d, i=i, o=other: _node_tables(d)[i].__setitem__("op", o)))
    out.append(("init seed", lambda d: d.setdefault("init", {}).__setitem__("seed", 1234)))
    return out


MUTATIONS = {name: _mutations(MERGED[name]) for name in ALL}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=st.sampled_from(ALL), pick=st.integers(0, 10**6))
def test_hash_changes_with_every_change_of_meaning(spec: str, pick: int) -> None:
    what, edit = MUTATIONS[spec][pick % len(MUTATIONS[spec])]
    data = copy.deepcopy(MERGED[spec])
    edit(data)
    try:
        graph = build_graph(validate(parse_text(to_toml(data), "spec.toml")))
    except SpecError:
        assume(False)  # the edit made an invalid spec (e.g. an eps where only layer_norm has one)
        raise
    assert architecture_hash(graph) != BASELINE[spec], what


def test_every_mutation_kind_is_exercised() -> None:
    """The sensitivity property is not vacuous: each reference spec offers several kinds of edit."""
    for spec, found in MUTATIONS.items():
        kinds = {what.split()[0] if what.startswith("params") else what.split()[-2] for what, _ in found}
        assert len(found) >= 5 and len(kinds) >= 2, (spec, [w for w, _ in found])


def test_canonical_graph_leaves_out_defaults_and_names() -> None:
    graph = build_graph(validate(parse(SPECS / "gpt-tiny.toml")))
    data = canonical_graph(graph)
    assert data["nodes"]["h.0.mlp"]["params"] == {"d_model": 128, "d_ff": 512, "activation": "gelu_new",
                                                 "out_init_std": pytest.approx(0.02 / 8**0.5)}
    assert data["nodes"]["lm_head"]["ties"] == {"weight": "wte.weight"}
    assert "name" not in data and "description" not in data


# -- the command ------------------------------------------------------------------------------
def test_hash_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hash", str(SPECS / "bert-base.toml"), str(SPECS / "gpt-tiny.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{BASELINE['bert-base.toml']}  {SPECS / 'bert-base.toml'}", f"{BASELINE['gpt-tiny.toml']}  {SPECS / 'gpt-tiny.toml'}"]
    assert main(["hash", "--all", "--json", str(SPECS / "gpt-tiny.toml")]) == 0
    found = json.loads(capsys.readouterr().out)[str(SPECS / "gpt-tiny.toml")]
    assert found["architecture"] == BASELINE["gpt-tiny.toml"] and "train" in found
    assert main(["hash", "--canonical", str(SPECS / "gpt-tiny.toml")]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"]["wte"]["op"] == "embedding"
