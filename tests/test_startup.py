"""Commands that run no model never import torch (nor transformers): they start at once.

Each command runs in a fresh process through a small wrapper that reports, at
exit, which heavy modules ended up in `sys.modules`. This checks imports, not
time: `python -m benchmarks.startup` measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
HEAVY = ("torch", "transformers")
# What the spec stages and the runtime may load (specc.frontend.dsl: the DSL's parser, which TOML specs never need).
STAGES = ("lark", "pydantic", "networkx", "numpy", "tokenizers", "specc.frontend.dsl")
# What only reading or training on a task's data needs: the file-format readers (and the records' module, which
# imports them all) and the checkpoint transfer (safetensors). A check of tasks with demo data validates them without.
TASK_DATA = ("specc.runtime.data.formats", "specc.runtime.data.labelled", "specc.runtime.runs.transfer", "safetensors")
# Task types and demos load when a spec names them: bert-tiny-tasks declares classification and regression tasks on
# classification demos, so it loads none of these.
OTHER_TASKS = ("specc.runtime.tasks.qa", "specc.runtime.tasks.tagging", "specc.runtime.tasks.translation",
               "specc.runtime.data.demos.grammar", "specc.runtime.data.demos.reading")

# Runs `specc ARGS` in this process, then prints (last line of stderr) which watched modules it imported.
WRAPPER = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(m for m in %r if m in sys.modules)), file=sys.stderr))
from specc.cli import main
sys.exit(main(sys.argv[1:]))
""" % (HEAVY + STAGES + TASK_DATA + OTHER_TASKS,)


def _heavy_imports(cli_env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=ROOT, env=cli_env, capture_output=True,
                          text=True, timeout=120)
    return done.returncode, json.loads(done.stderr.strip().splitlines()[-1])


def _commands(tmp: Path) -> dict[str, list[str]]:
    old, new = tmp / "old.toml", tmp / "new.toml"
    text = (SPECS / "gpt2-small.toml").read_text()  # extends nothing, so it can move
    old.write_text(text)
    new.write_text(text.replace("layers = 12", "layers = 6"))
    return {
        "help": ["--help"],
        "check (objective)": ["check", str(SPECS / "bert-base-pretraining.toml")],
        "check (tasks)": ["check", str(SPECS / "bert-tiny-tasks.toml")],
        "check (translation)": ["check", str(SPECS / "t5-tiny-translate.toml")],
        "check --json": ["check", "--json", str(SPECS / "gpt-tiny.toml")],
        "fmt": ["fmt", "--check", str(SPECS / "gpt-tiny.toml")],
        "convert": ["convert", str(old), "-o", str(tmp / "old.spec")],
        "explain": ["explain", str(SPECS / "gpt-tiny.toml"), "params.d_model"],
        "hash": ["hash", "--all", str(SPECS / "gpt-tiny.toml")],
        "diff": ["diff", str(old), str(new)],
        "textconv": ["textconv", str(old)],
        "git-diff": ["git-diff", "spec.toml", str(old), "1" * 7, "100644", str(new), "2" * 7, "100644"],
        "summary": ["summary", str(SPECS / "t5-small.toml")],
        "ops": ["ops"],
        "ops NAME": ["ops", "attention"],
        "ops --markdown": ["ops", "--markdown"],
    }


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return _commands(tmp_path_factory.mktemp("startup"))


NAMES = ["help", "check (objective)", "check (tasks)", "check (translation)", "check --json", "fmt", "convert", "explain",
         "hash", "diff", "textconv", "git-diff", "summary", "ops", "ops NAME",
         "ops --markdown"]


def test_every_command_is_named(commands: dict[str, list[str]]) -> None:
    assert list(commands) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_command_imports_no_torch(name: str, commands: dict[str, list[str]], cli_env: dict[str, str]) -> None:
    rc, heavy = _heavy_imports(cli_env, *commands[name])
    assert rc == 0, f"specc {' '.join(commands[name])} exited {rc}"
    assert [m for m in heavy if m in HEAVY] == [], f"specc {' '.join(commands[name])} imported {heavy}"


# Commands load none of the stages they skip: --help only registers the verbs; fmt / convert work on the text's tree
# (the front end, so lark), never on its validated model or its graph; `ops` reads the records (pydantic), builds no
# graph and parses nothing; the spec-reading commands build a graph, but its networkx view is made only when asked for
# (the compiler asks), they read no data and load no tokenizer, so numpy and tokenizers stay out, and a TOML spec
# needs no DSL parser.
NOT_LOADED = {
    "help": STAGES + TASK_DATA + OTHER_TASKS,
    "fmt": ("pydantic", "networkx", "numpy", "tokenizers"),
    "convert": ("pydantic", "networkx", "numpy", "tokenizers"),
    "ops": ("lark", "networkx", "numpy", "tokenizers", "specc.frontend.dsl"),
    "ops NAME": ("networkx", "numpy", "tokenizers"),
    **{name: ("networkx", "numpy", "tokenizers", "specc.frontend.dsl") + TASK_DATA
       for name in ("check (objective)", "check (tasks)", "check (translation)", "check --json", "explain", "hash",
                    "diff", "textconv", "git-diff", "summary")},
}
NOT_LOADED["check (tasks)"] += OTHER_TASKS


@pytest.mark.parametrize("name", sorted(NOT_LOADED))
def test_light_commands_skip_the_later_stages(name: str, commands: dict[str, list[str]], cli_env: dict[str, str]) -> None:
    rc, loaded = _heavy_imports(cli_env, *commands[name])
    assert rc == 0, f"specc {' '.join(commands[name])} exited {rc}"
    assert [m for m in loaded if m in NOT_LOADED[name]] == [], f"specc {' '.join(commands[name])} imported {loaded}"


def test_the_wrapper_sees_the_stages_when_a_command_needs_them(commands: dict[str, list[str]],
                                                               cli_env: dict[str, str]) -> None:
    """The check above can fail: `check` parses and validates, so lark and pydantic show, and `compile` reads the
    graph's networkx view, so networkx shows."""
    rc, loaded = _heavy_imports(cli_env, *commands["check --json"])
    assert rc == 0 and {"lark", "pydantic"} <= set(loaded)
    rc, loaded = _heavy_imports(cli_env, "compile", str(SPECS / "gpt-tiny.toml"))
    assert rc == 0 and "networkx" in loaded


def test_the_wrapper_sees_the_readers_when_a_task_reads_files(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The check above can fail: a task whose data is a file has its first record read by `check`, so the formats
    package shows (and the records' module does not: a check peeks, it reads no split)."""
    for name in ("bert-tiny.toml", "bert-base-pretraining.toml"):
        (tmp_path / name).write_text((SPECS / name).read_text())
    text = (SPECS / "bert-tiny-sentiment.toml").read_text()
    assert 'demo = "sentiment"' in text
    (tmp_path / "spec.toml").write_text(text.replace('demo = "sentiment"', 'train = "train.jsonl"'))
    (tmp_path / "train.jsonl").write_text('{"text": "good", "label": "pos"}\n')
    rc, loaded = _heavy_imports(cli_env, "check", str(tmp_path / "spec.toml"))
    assert rc == 0 and "specc.runtime.data.formats" in loaded and "safetensors" not in loaded


def test_the_wrapper_sees_a_task_type_when_the_spec_declares_it(commands: dict[str, list[str]],
                                                                 cli_env: dict[str, str]) -> None:
    """The check above can fail: a translation task on the translation demo loads that type and that demo's module
    (and no other type's)."""
    rc, loaded = _heavy_imports(cli_env, *commands["check (translation)"])
    assert rc == 0 and [m for m in loaded if m in OTHER_TASKS] == ["specc.runtime.data.demos.grammar",
                                                                   "specc.runtime.tasks.translation"]


def test_the_wrapper_sees_torch_when_a_command_loads_it(cli_env: dict[str, str]) -> None:
    """The check can fail: `compile` builds a model, so torch shows."""
    rc, heavy = _heavy_imports(cli_env, "compile", str(SPECS / "gpt-tiny.toml"))
    assert rc == 0 and "torch" in heavy


def test_importing_specc_and_its_records_loads_no_torch(cli_env: dict[str, str]) -> None:
    code = ("import sys, specc, specc.ops, specc.graph, specc.diff\n"
            "from specc.ops import REGISTRY\n"
            "assert len(REGISTRY) > 10\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_verb_table_names_what_each_module_registers() -> None:
    """`specc VERB` registers only the module that `VERBS` names for VERB, so the table must match the modules."""
    import argparse
    import importlib

    from specc.cli import VERBS, _parser

    for name, verbs in VERBS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(sub)
        assert tuple(sub.choices) == verbs, name
    full = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(full.choices) == [verb for verbs in VERBS.values() for verb in verbs]
    one = next(a for a in _parser(["hash", "x.toml"])._actions if isinstance(a, argparse._SubParsersAction))
    assert list(one.choices) == list(VERBS["specc.cli.versioning"])
