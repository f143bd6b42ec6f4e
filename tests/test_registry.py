"""The one registry class: a taken name, a forgotten module and an unknown name each fail loudly."""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from specc.registry import Registry, RegistryError


@dataclass(frozen=True)
class Thing:
    name: str


def test_a_name_registered_twice_is_an_error() -> None:
    things: Registry[Thing] = Registry("thing")
    things.register(Thing("a"))
    with pytest.raises(RegistryError, match="thing 'a' is registered twice"):
        things.register(Thing("a"))


def test_an_unknown_name_says_the_kind_and_the_closest_name() -> None:
    things: Registry[Thing] = Registry("thing")
    things.register(Thing("layernorm"))
    with pytest.raises(KeyError, match="unknown thing 'layrnorm'; did you mean 'layernorm'"):
        things["layrnorm"]
    with pytest.raises(KeyError, match="unknown thing 'zzz'; known: layernorm"):
        things["zzz"]
    assert things.get("zzz") is None and "zzz" not in things  # membership and get stay plain dict lookups


def test_a_module_left_off_the_import_line_fails_at_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "regpkg"
    pkg.mkdir()
    (pkg / "one.py").write_text("")
    (pkg / "two.py").write_text("")
    (pkg / "tool.py").write_text("")
    (pkg / "__init__.py").write_text(
        "from specc.registry import Registry\n"
        "from regpkg import one\n"
        "Registry('thing').complete(__name__, __path__, helpers=('tool',))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError, match=r"regpkg does not import two: add it to the import line"):
        importlib.import_module("regpkg")
    for name in [m for m in sys.modules if m == "regpkg" or m.startswith("regpkg.")]:
        monkeypatch.delitem(sys.modules, name)
    (pkg / "__init__.py").write_text(
        "from specc.registry import Registry\n"
        "from regpkg import one, two\n"
        "Registry('thing').complete(__name__, __path__, helpers=('tool',))\n")
    importlib.import_module("regpkg")  # every module imported (the helper excepted): no error


def test_every_kind_uses_the_one_registry() -> None:
    from specc.hf.families import FAMILIES
    from specc.ops import REGISTRY
    from specc.runtime.data.demos import DEMOS
    from specc.runtime.objectives import OBJECTIVES
    from specc.runtime.tasks import TASKS
    from specc.runtime.tasks.metrics import METRICS, register

    for registry in (REGISTRY, OBJECTIVES, TASKS, METRICS, DEMOS, FAMILIES):
        assert isinstance(registry, Registry) and registry, registry
    with pytest.raises(RegistryError, match="metric 'accuracy' is registered twice"):
        register("accuracy", "labels")(lambda pred, gold: 0.0)
    with pytest.raises(KeyError, match="did you mean 'accuracy'"):
        METRICS["acuracy"]


@pytest.mark.parametrize("package, registry", [("specc.runtime.tasks", "specc.runtime.tasks.base:TASKS"),
                                               ("specc.runtime.data.demos", "specc.runtime.data.demos.base:DEMOS")])
def test_a_lazy_registry_table_names_every_registering_module(package: str, registry: str) -> None:
    """A lazy registry imports a record's module when the record is looked up, so its table must name, for each
    record, the module that registers it, and every module that registers one must be in the table: a module left
    out would register nothing, silently. Run in a fresh process, so no earlier test has imported any module."""
    code = f"""
import importlib, pkgutil, sys
module, name = {registry!r}.split(":")
reg = getattr(importlib.import_module(module), name)
assert not any(m in sys.modules for m in set(reg.modules.values())), "a lookup-free import loaded a record's module"
first = sorted(reg.modules)[0]
assert reg.get(first) is not None and all(sys.modules.get(m) is None for n, m in reg.modules.items()
                                           if m != reg.modules[first]), "one lookup loaded other modules"
pkg = importlib.import_module({package!r})
for m in pkgutil.iter_modules(pkg.__path__):  # a module outside the table registers nothing
    before = dict.__len__(reg)
    importlib.import_module({package!r} + "." + m.name)
    assert {package!r} + "." + m.name in reg.modules.values() or dict.__len__(reg) == before, m.name
reg.load_all()  # raises RegistryError when the table and the registrations differ
assert len(reg) == len(reg.modules) and all(dict.__getitem__(reg, n).name == n for n in reg.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr


def test_a_lazy_registry_loads_a_module_per_lookup_and_all_when_listed(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "lazypkg").mkdir()
    (tmp_path / "lazypkg" / "__init__.py").write_text(
        "from specc.registry import LazyRegistry\n"
        "REG = LazyRegistry('thing', {'a': 'lazypkg.one', 'b': 'lazypkg.two', 'c': 'lazypkg.two'})\n")
    rec = "from dataclasses import dataclass\n@dataclass\nclass T:\n    name: str\n"
    (tmp_path / "lazypkg" / "one.py").write_text(rec + "from lazypkg import REG\nREG.register(T('a'))\n")
    (tmp_path / "lazypkg" / "two.py").write_text(rec + "from lazypkg import REG\nREG.register(T('b'))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = importlib.import_module("lazypkg").REG
    assert reg["a"].name == "a" and "lazypkg.one" in sys.modules and "lazypkg.two" not in sys.modules
    assert "zzz" not in reg and reg.get("zzz") is None and "lazypkg.two" not in sys.modules
    with pytest.raises(RegistryError, match="differ: c"):  # 'c' is in the table, but two.py never registers it
        list(reg)
    reg.modules = {"b": "lazypkg.two", "a": "lazypkg.one"}
    assert list(reg) == list(reg.keys()) == ["b", "a"] and [r.name for r in reg.values()] == ["b", "a"]  # table order
    assert len(reg) == 2 and dict(reg.items())["a"].name == "a"
    for name in ("lazypkg", "lazypkg.one", "lazypkg.two"):
        monkeypatch.delitem(sys.modules, name)


def test_an_hf_family_is_one_record_with_its_rule_sets() -> None:
    from specc.hf import ARCHITECTURES
    from specc.hf.families import FAMILIES, KEY_LAYOUTS
    from specc.hf.family import Family, HFClass
    from specc.hf.rules import KeyLayout

    # every class of every family names one of its own family's rule sets, and every rule set is reachable by name
    for family in FAMILIES.values():
        assert {c.arch for c in family.classes} <= {r.name for r in family.rule_sets}, family.model_type
    assert set(ARCHITECTURES) == set(KEY_LAYOUTS) == {r.name for f in FAMILIES.values() for r in f.rule_sets}
    bert = FAMILIES["bert"]
    with pytest.raises(RegistryError, match="HF family 'mine': no rule set nope"):
        Family("mine", (HFClass("MyModel", "bert-base.toml", "nope"),), bert.to_spec, bert.to_config, bert.layout,
               rule_sets=(KeyLayout("mine", lambda lay: []),), detect=lambda keys: None, reference="bert-base.toml")


def test_an_hf_familys_task_heads_are_in_its_record() -> None:
    from specc.hf.families import FAMILIES
    from specc.hf.family import Family, HFClass
    from specc.hf.heads import _names
    from specc.hf.rules import KeyLayout

    # the task classes export-hf writes are exactly those the family records declare, named from the base class
    with_heads = {f.model_type for f in FAMILIES.values() if f.heads}
    assert with_heads == {"bert", "roberta", "distilbert", "gpt2"}
    assert "DistilBertForSequenceClassification" in _names() and "GPT2ForTokenClassification" in _names()
    for family in FAMILIES.values():
        if family.heads:  # the task classes hold the base model under the prefix its prefixed classes use
            assert family.heads.prefix in {c.prefix for c in family.classes if c.prefix}, family.model_type
            assert len({c.kind for c in family.heads.classes}) == len(family.heads.classes), family.model_type
    bert = FAMILIES["bert"]
    with pytest.raises(RegistryError, match="its first class should be the base model"):
        Family("mine", (HFClass("MyForMaskedLM", "bert-base.toml", "mine"),), bert.to_spec, bert.to_config, bert.layout,
               rule_sets=(KeyLayout("mine", lambda lay: []),), detect=lambda keys: None, reference="bert-base.toml")
