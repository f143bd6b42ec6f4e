"""Spec format versions: the migration registry, `specc upgrade` (in place, comments kept), old checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import specc.migrate as migrate
from specc.canonical import architecture_hash
from specc.cli import main
from specc.diagnostics import SpecError
from specc.frontend import parse, parse_text
from specc.migrate import Migration, RenameKey, SetValue, upgrade_data, upgrade_text
from specc.schema import validate

OLD = """\
# A spec from before format versions.
# It has no `format` key.

[params]
d = 16  # the width

[model.inputs]
tokens = "int[batch, seq]"

[model.outputs]
y = "emb"

[model.nodes]
emb = { op = "embedding", in = "tokens", vocab = 10, dim = "d" }  # one node
"""


def test_format_0_upgrades_to_1_keeping_every_comment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "old.toml"
    file.write_text(OLD)
    with pytest.raises(SpecError, match="missing spec format version"):
        validate(parse(file))
    assert main(["upgrade", "--check", str(file)]) == 1
    assert "needs upgrading (0 → 1" in capsys.readouterr().out and file.read_text() == OLD
    assert main(["upgrade", str(file)]) == 0
    assert file.read_text() == OLD.replace("\n[params]", "\nformat = 1\n\n[params]", 1)
    current = validate(parse(file))
    assert current.format == 1
    assert main(["upgrade", "--check", str(file)]) == 0
    assert "already at format 1" in capsys.readouterr().out.splitlines()[-1]


def test_data_and_text_give_the_same_spec() -> None:
    from_text, applied = upgrade_text(OLD, "old.toml")
    from_data, applied_data = upgrade_data(parse_text(OLD, "old.toml").data)
    assert [m.source for m in applied] == [m.source for m in applied_data] == [0]
    assert parse_text(from_text, "old.toml").data == from_data


def test_reference_specs_are_current() -> None:
    specs = Path(__file__).resolve().parent.parent / "specs"
    for file in specs.glob("*.toml"):
        text = file.read_text()
        assert upgrade_text(text, str(file)) == (text, [])


@pytest.fixture
def format_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A made-up format 2 that renames `dim` to `width` and sets eps: the edits future migrations will need."""
    def edits(data: dict) -> list:
        nodes = data["model"]["nodes"]
        return [RenameKey(("model", "nodes", name, "dim"), "width") for name in nodes if "dim" in nodes[name]] + \
               [SetValue(("params", "eps"), 1e-6), RenameKey(("params", "d"), "d_model")]

    monkeypatch.setattr(migrate, "FORMAT_VERSION", 2)
    monkeypatch.setattr(migrate, "MIGRATIONS", {**migrate.MIGRATIONS, 1: Migration(1, "rename dim", edits)})


def test_migrations_chain_and_edit_keys_and_values_in_place(format_2: None) -> None:
    text = OLD.replace("d = 16  # the width", "d = 16  # the width\neps = 1e-5  # stays a comment")
    new, applied = upgrade_text(text, "old.toml")
    assert [m.source for m in applied] == [0, 1]
    assert "format = 2\n" in new and "d_model = 16  # the width" in new and "eps = 1e-06  # stays a comment" in new
    assert 'vocab = 10, width = "d" }  # one node' in new
    assert parse_text(new, "x.toml").data == upgrade_data(parse_text(text, "x.toml").data)[0]


def test_a_key_written_in_several_places_is_refused(format_2: None) -> None:
    text = OLD.replace('emb = { op = "embedding", in = "tokens", vocab = 10, dim = "d" }',
                       '[model.nodes.emb]\nop = "embedding"\nin = "tokens"\nvocab = 10\ndim = "d"')
    text = text.replace("[params]\nd = 16", "[params.d]\nx = 1\n[params.e]\ny = 2\n[params.d.z]\nw = 3\n[params.q]")
    with pytest.raises(SpecError, match="cannot upgrade this spec in place"):
        upgrade_text(text, "x.toml")


def test_a_checkpoint_of_an_older_format_still_loads(tmp_path: Path) -> None:
    from specc.runtime.runs.lineage import stored_graph

    (tmp_path / "spec.json").write_text(json.dumps(parse_text(OLD, "old.toml").data))
    graph = stored_graph(tmp_path)
    assert graph.spec.format == 1
    assert architecture_hash(graph) == architecture_hash(validate(parse_text(upgrade_text(OLD, "o.toml")[0], "o.toml")))
