"""The `specc` command line. Each verb exposes one stage or job.

User mistakes (`SpecError`, `UserError`) print diagnostics and exit 1 with no
traceback; anything else is an internal error and says so.

Registering the verbs imports no torch: each handler imports what it runs, so
`--help`, `check`, `fmt`, `hash`, `diff`... start without loading it
(tests/test_startup.py).
"""

from __future__ import annotations

import argparse
import gc
import sys
import traceback
from typing import Callable, Sequence

from specc.diagnostics import SpecError, UserError
from specc.version import __version__

Handler = Callable[[argparse.Namespace], int]


# The module that registers each verb, in `specc --help`'s order. `specc VERB ...` imports and registers that module
# only (about 20 ms less at each start than all eight); --help, --version and unknown verbs get them all.
# tests/test_startup.py checks this table against what the modules register.
VERBS = {
    "specc.cli.core": ("check", "summary", "compile", "smoke"),
    "specc.cli.reference": ("ops",),
    "specc.cli.run": ("train", "eval", "generate"),
    "specc.cli.versioning": ("hash", "diff", "textconv", "git-diff", "git-setup", "warm-start", "graph", "upgrade"),
    "specc.cli.tasks": ("finetune", "predict", "merge"),
    "specc.cli.text": ("fmt", "convert", "explain"),
    "specc.cli.interop": ("import-hf", "export-hf"),
    "specc.cli.data": ("data",),
}


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser; when `argv` starts with a known verb, with that verb's module registered only."""
    parser = argparse.ArgumentParser(prog="specc", description="Declarative model-spec compiler for Transformers.")
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    owner = [name for name, verbs in VERBS.items() if argv and argv[0] in verbs]
    for module in _modules(owner) or _modules(list(VERBS)):
        module.register(sub)
    return parser


def _modules(names: list[str]) -> list:
    """The registering modules of `names`; those of later stages are present once their packages are installed."""
    import importlib

    found = []
    for name in names:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
    return found


RUNS_MODELS = ("train", "finetune", "eval", "generate", "predict")  # commands whose process runs a model
# Verbs that read specs and print, in a fraction of a second: they run without the cyclic garbage collector, which
# would only re-scan the long-lived objects their imports make (pydantic's schemas, the parser tables): about 20 ms
# of a `specc check`. Reference counting still frees everything else; the process ends right after.
QUICK = ("check", "summary", "ops", "hash", "diff", "textconv", "git-diff", "fmt", "convert", "explain")


def main(argv: Sequence[str] | None = None) -> int:
    whole_process = argv is None  # run as the `specc` command, not called from Python (a test, a notebook)
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv).parse_args(argv)
    if isinstance(getattr(args, "search_paths", None), list):  # after the --search-path folders, SPECC_PATH's
        from specc.frontend.bases import env_search_paths

        args.search_paths += env_search_paths()
    if args.command in RUNS_MODELS:  # a process-wide setting, so the launcher's: see specc/runtime/train/allocator.py
        from specc.runtime.train.allocator import tune_malloc

        tune_malloc()
    if args.command in QUICK and whole_process:
        gc.disable()
    try:
        return int(args.handler(args) or 0)
    except SpecError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, a read-only folder, a path through a file: the system's word and the file
        print(f"error: {_os_message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:
        if _is_node_error(err):
            print(f"error: {err}", file=sys.stderr)
            return 1
        # an internal bug, reported as one
        print("specc: internal error (this is a bug in specc, not in your spec):", file=sys.stderr)
        traceback.print_exc()
        return 2


def _is_node_error(err: Exception) -> bool:
    """A model's node failed on its input (`NodeError`): only possible once the compiler was imported."""
    modules = sys.modules.get("specc.compiler.modules")
    return modules is not None and isinstance(err, modules.NodeError)


def _os_message(err: OSError) -> str:
    files = " → ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    return f"{files}: {err.strerror or err}" if files else str(err)


if __name__ == "__main__":
    sys.exit(main())
