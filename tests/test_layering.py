"""The pipeline is the layout: a stage imports only the stages before it, and nothing runs code from data.

Stages, in order: front ends (with `raw`, `expr`, `diagnostics`) → schema → graph
→ compiler. The layer library (`ops`) may be imported by schema, graph and
compiler, and itself depends on no stage. Checked statically with `ast`, so
imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SPECC = Path(__file__).resolve().parent.parent / "specc"

FRONT = {"frontend", "raw", "expr", "diagnostics"}
ALLOWED: dict[str, set[str]] = {
    "diagnostics": set(),
    "hostmem": set(),  # the machine's memory, read from the OS: a leaf the compiler and the runtime's check share
    "raw": {"diagnostics"},
    "expr": {"diagnostics"},
    "frontend": FRONT,
    "ops": {"ops", "diagnostics"},
    "schema": FRONT | {"schema", "ops"},
    "graph": FRONT | {"schema", "ops", "graph"},
    "compiler": FRONT | {"schema", "ops", "graph", "compiler", "hostmem"},
}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}


def _files(stage: str) -> list[Path]:
    single = SPECC / f"{stage}.py"
    return [single] if single.exists() else sorted((SPECC / stage).rglob("*.py"))


def _specc_imports(path: Path) -> list[tuple[int, str]]:
    """(line, stage) of every `specc.<stage>` this file imports, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            names = [node.module or ""]
            if node.module == "specc":
                names = [f"specc.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "specc":
                found.append((node.lineno, parts[1] if len(parts) > 1 else "<package>"))
    return found


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_stage_imports_only_earlier_stages(stage: str) -> None:
    files = _files(stage)
    assert files, f"no source for stage {stage}"
    bad = [f"{p.relative_to(SPECC.parent)}:{line} imports specc.{target}"
           for p in files for line, target in _specc_imports(p) if target not in ALLOWED[stage] | {stage}]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import os\ndef f():\n    from specc.graph import build_graph\n    import specc.compiler\n"
                      "from specc import schema\n")
    assert sorted(_specc_imports(sample)) == [(3, "graph"), (4, "compiler"), (5, "schema")]


def _all_sources() -> list[Path]:
    return sorted(SPECC.rglob("*.py"))


def test_no_code_execution_or_pickle_in_specc() -> None:
    """No eval/exec/compile/__import__ builtins, no pickle-family imports; torch.load only with weights_only=True."""
    bad = []
    for path in _all_sources():
        where = path.relative_to(SPECC.parent)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                if not (node.func.id == "__import__" and path.parts[-2] == "cli"):  # the CLI reads its version
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
    """A plain-text guard as well: `eval(` appears only as the expression evaluator's own method."""
    for stage in ALLOWED:
        for path in _files(stage):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                for word in ("eval(", "exec(", "pickle"):
                    hits = code.count(word) - code.count(f".{word}") - code.count(f"def {word}")
                    assert hits <= 0, f"{path.relative_to(SPECC.parent)}:{n}: {line.strip()}"
