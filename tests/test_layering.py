"""The pipeline is the layout: every unit imports only units below it, nothing imports in a cycle, and nothing runs
code from data.

`LAYERS` lists every unit of `specc/` from the bottom up: a unit is a package
or module under `specc/` (``frontend``, ``diagnostics``), or one sub-package of
the runtime (`RUNTIME_GROUPS`: ``runtime`` is its core, the modules at the top of
specc/runtime/ — errors, section, config, device, batch — then the
packages data, runs, inference, objectives, tasks, distributed, train). A unit may import
itself and any unit of a lower layer; units of one layer are independent of
each other. Checked statically with `ast`, so imports inside functions count
too; every file of `specc/` must belong to a unit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SPECC = Path(__file__).resolve().parent.parent / "specc"

# The runtime's sub-packages, in dependency order; ``runtime`` is the modules at the top of specc/runtime/.
RUNTIME_GROUPS = ["runtime", "runtime.data", "runtime.runs", "runtime.inference", "runtime.objectives",
                  "runtime.tasks", "runtime.distributed", "runtime.train"]

LAYERS: list[set[str]] = [
    # no specc imports at all (hostmem: the machine's memory; expr_tables: the expression parser's generated tables)
    {"atomic", "diagnostics", "version", "lazy", "hostmem", "expr_tables"},
    {"jsonfile", "tensorcheck", "registry"},  # bounded JSON reading; tensor checks; the one registry class
    {"ops"},  # the layer library: records, shape rules, builders, capabilities
    {"raw", "expr"},
    {"frontend"},  # TOML and DSL front ends
    {"schema"},
    {"graph"},
    {"canonical", "summary", "migrate", "explain", "shrink", "picture"},  # read a graph or a spec
    {"compiler"},
    {"smoke", "hf", "diff"},
    *({group} for group in RUNTIME_GROUPS),
    {"reference"},  # `specc ops`: reads the op, objective and task registries
    {"cli"},
    {"<package>"},  # specc/__init__.py (the public API) and __main__.py
]
LEVEL = {unit: n for n, layer in enumerate(LAYERS) for unit in layer}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}


def module_of(path: Path) -> str:
    """`specc/runtime/data/corpus.py` → ``specc.runtime.data.corpus``; a package is its `__init__`."""
    parts = path.relative_to(SPECC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_of(p): p for p in sorted(SPECC.rglob("*.py"))}


def unit_of(module: str) -> str | None:
    """The unit a ``specc.`` module belongs to: its runtime group, or the top-level package or module it is in."""
    rest = module.split(".")[1:]
    if not rest or rest == ["__main__"]:
        return "<package>"
    if rest[0] == "runtime":
        group = ".".join(rest[:2])
        if group in RUNTIME_GROUPS:
            return group
        return "runtime" if len(rest) <= 2 and (SPECC / "runtime" / f"{rest[-1]}.py").is_file() else None
    return rest[0] if rest[0] in LEVEL else None


def _type_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:` (annotations only: never executed)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            out |= {id(n) for b in node.body for n in ast.walk(b)}
    return out


def imports_of(path: Path, executed_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every specc module this file imports, at any depth (inside functions too). `from P import
    name` counts as importing `P.name` when that is a module, else `P`."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_only(tree) if executed_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            module = node.module or ""
            names = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        for name in names:
            if name.split(".")[0] == "specc":
                while name not in MODULES and "." in name:
                    name = name.rpartition(".")[0]
                found.append((node.lineno, name))
    return found


def test_every_file_belongs_to_a_unit() -> None:
    lost = [str(p.relative_to(SPECC.parent)) for m, p in MODULES.items() if unit_of(m) is None]
    assert not lost, f"files outside every layer (add their unit to LAYERS): {lost}"


@pytest.mark.parametrize("unit", sorted(LEVEL))
def test_unit_imports_only_lower_layers(unit: str) -> None:
    files = [(m, p) for m, p in MODULES.items() if unit_of(m) == unit]
    assert files, f"no source for unit {unit}"
    bad = []
    for _, path in files:
        for line, target in imports_of(path):
            other = unit_of(target)
            if other != unit and (other is None or LEVEL[other] >= LEVEL[unit]):
                bad.append(f"{path.relative_to(SPECC.parent)}:{line} imports {target} ({other}, not below {unit})")
    assert not bad, "\n".join(bad)


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for module, path in MODULES.items():
        graph.add_node(module)
        graph.add_edges_from((module, target) for _, target in imports_of(path, executed_only=True) if target != module)
    return graph


def test_no_import_cycles() -> None:
    """No module imports itself through others, by module-level or function-level imports (a package's
    `__init__` that imports its members is fine only while no member imports the package back). Imports under
    `if TYPE_CHECKING:` are annotations only and never run, so they are left out here (the layer test counts them)."""
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


RUNTIME_MAY_IMPORT = {"specc.ops": {"KVCache"}}  # the inference cache is an interface of the compiled model, not an op
COMPILER_INTERNALS = ("specc.compiler.modules", "specc.compiler.compile")


def test_runtime_imports_no_op_classes_nor_compiler_internals() -> None:
    """The runtime asks by capability (specc.graph.queries, the `no_decay_kind` the compiler sets, the compiler's
    public functions), so a new op needs no runtime change: no import of an op module or class, nor of the
    compiler's module classes."""
    bad = []
    for module, path in MODULES.items():
        if not (unit_of(module) or "").startswith("runtime"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("specc.ops", *COMPILER_INTERNALS)):
                allowed = RUNTIME_MAY_IMPORT.get(node.module or "", set())
                bad += [f"{path.relative_to(SPECC.parent)}:{node.lineno}: from {node.module} import {a.name}"
                        for a in node.names if a.name not in allowed]
            elif isinstance(node, ast.Import):
                bad += [f"{path.relative_to(SPECC.parent)}:{node.lineno}: import {a.name}" for a in node.names
                        if a.name.startswith(("specc.ops", *COMPILER_INTERNALS))]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import os\ndef f():\n    from specc.graph import build_graph\n    import specc.compiler\n"
                      "from specc import schema\nfrom specc.runtime import distributed\n")
    assert sorted(imports_of(sample)) == [(3, "specc.graph"), (4, "specc.compiler"), (5, "specc.schema"),
                                          (6, "specc.runtime.distributed")]


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    graph = import_graph()
    graph.add_edge("specc.schema", "specc.graph")  # graph imports schema; this closes a loop
    assert any(len(c) > 1 for c in nx.strongly_connected_components(graph))


def _all_sources() -> list[Path]:
    return sorted(SPECC.rglob("*.py"))


def test_no_code_execution_or_pickle_in_specc() -> None:
    """No eval/exec/compile/__import__ builtins, no pickle-family imports; torch.load only with weights_only=True."""
    bad = []
    for path in _all_sources():
        where = path.relative_to(SPECC.parent)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                bad.append(f"{where}:{node.lineno}: calls {node.func.id}()")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{where}:{node.lineno}: imports {m}" for m in modules if m.split(".")[0] in FORBIDDEN_MODULES]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "torch":
                    safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords)
                    if not safe:
                        bad.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
    assert not bad, "\n".join(bad)


def test_no_eval_text_in_stage_sources() -> None:
    """A plain-text guard as well (front ends to compiler): `eval(` appears only as the expression evaluator's own method."""
    stages = {"diagnostics", "raw", "expr", "frontend", "ops", "schema", "graph", "compiler"}
    for module, path in MODULES.items():
        if unit_of(module) in stages:
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                for word in ("eval(", "exec(", "pickle"):
                    hits = code.count(word) - code.count(f".{word}") - code.count(f"def {word}")
                    assert hits <= 0, f"{path.relative_to(SPECC.parent)}:{n}: {line.strip()}"
