"""Compile specs under a Python audit hook and report what the compilation did (not a test module).

    python hermetic_probe.py --warm SPEC... --probe SPEC[::SEARCH_DIR]...

First every ``--warm`` spec goes through the pipeline unwatched, so that
specc's own modules (error paths included) are imported. Then an audit hook
is installed (hooks cannot be removed, hence a process of its own) and
`os.environ` is replaced by a mapping that records reads; every ``--probe``
spec goes through parse → validate → build_graph → runtime sections →
compile_model (on the CPU for small models, else on the meta device), and the
events each one caused are printed as one JSON object: imports, code
compiled or executed, processes, sockets, native calls, environment reads,
and every file or folder opened.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

WATCHED = ("import", "exec", "compile", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
           "os.startfile", "pty.", "socket.", "ctypes.", "marshal.load", "pickle.", "urllib.", "http.", "webbrowser",
           "builtins.input", "code.", "cpython.run_")
FILES = ("open", "os.listdir", "os.scandir", "os.walk", "glob.glob", "shutil.", "os.remove", "os.rename", "os.mkdir")


def compile_one(path: str, search_paths: list[str]) -> str:
    """The pipeline on one spec: "model", or the diagnostic codes it ended in."""
    from specc.compiler import compile_model
    from specc.diagnostics import SpecError, UserError
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate

    try:
        graph = build_graph(validate(parse(path, (), search_paths)))
        if graph.spec.sections:
            from specc.runtime.train.session import plan

            plan(graph.spec, Path(path).resolve().parent, graph)
        small = graph.param_count() < 5_000_000
        compile_model(graph, "cpu" if small else "meta", init=small)
    except SpecError as err:
        return "diagnostics " + " ".join(sorted({d.code for d in err.diagnostics}))
    except UserError as err:
        return f"error {err}"
    return "model"


class _Environ(dict):  # type: ignore[type-arg]
    """`os.environ` during the probe: every read is recorded."""

    reads: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.reads.append(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.reads.append(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.reads.append(str(key))
        return super().__contains__(key)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warm", nargs="*", default=[])
    ap.add_argument("--probe", nargs="*", default=[])
    args = ap.parse_args()
    for spec in args.warm:
        compile_one(spec, [])
    events: list[tuple[str, str]] = []

    def hook(event: str, hook_args: tuple[Any, ...]) -> None:
        if event.startswith(WATCHED) or event.startswith(FILES):
            first = hook_args[0] if hook_args else ""
            events.append((event, os.fsdecode(first) if isinstance(first, (str, bytes, os.PathLike)) else repr(first)[:200]))

    environ = _Environ(os.environ)
    real_environ = os.environ
    sys.addaudithook(hook)
    report = {}
    for spec in args.probe:
        events.clear()
        environ.reads.clear()
        os.environ = environ  # type: ignore[assignment]
        try:
            path, _, search = spec.partition("::")
            outcome = compile_one(path, [search] if search else [])
        finally:
            os.environ = real_environ
        report[spec] = {"outcome": outcome, "events": list(events), "env": list(environ.reads)}
    sys.stdout.write(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
