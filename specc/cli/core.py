"""Compiler verbs: check, summary, compile, smoke."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from specc.cli.common import add_spec_args, load_graph_args, positive_int


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="parse, validate and shape-check a spec (silent on success)")
    add_spec_args(p)
    p.add_argument("--json", action="store_true", help="print the diagnostics as a JSON array (file, range, severity, "
                   "code, message, hint), [] when there are none")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("summary", help="per-block table of shapes, parameters and FLOPs/token")
    add_spec_args(p)
    p.add_argument("--context", type=positive_int, default=None, help="keys attention sees, for FLOPs (default: max_seq or 512)")
    p.set_defaults(handler=cmd_summary)

    p = sub.add_parser("compile", help="compile a spec and print its module tree")
    add_spec_args(p)
    p.set_defaults(handler=cmd_compile)

    p = sub.add_parser("smoke", help="shrink a spec and run one CPU forward and backward pass")
    add_spec_args(p)
    p.add_argument("--batch", type=positive_int, default=2)
    p.add_argument("--seq", type=positive_int, default=16)
    p.set_defaults(handler=cmd_smoke)


def cmd_check(args: argparse.Namespace) -> int:
    if args.json:
        import json

        from specc.diagnostics import SpecError

        try:
            _check(args)
        except SpecError as err:
            print(json.dumps([d.as_dict() for d in err.diagnostics], indent=1, ensure_ascii=False))
            return 1
        print("[]")
        return 0
    return _check(args)


def _check(args: argparse.Namespace) -> int:
    graph = load_graph_args(args)
    if graph.spec.sections:
        # The runtime sections ([train], [objective], ...) are checked against the architecture too.
        from specc.runtime.train.session import plan

        plan(graph.spec, Path(args.spec).resolve().parent, graph)  # the graph is built once
    if "tasks" in graph.spec.sections:
        # The field names a task reads, against its data files' headers / first records (`plan` opens no data).
        from specc.diagnostics import SpecError
        from specc.runtime.tasks.fields import check_data_fields

        found = check_data_fields(graph.spec, graph, Path(args.spec).resolve().parent)
        if found:
            raise SpecError(found)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from specc.summary import summary_table

    print(summary_table(load_graph_args(args), args.context))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from specc.compiler import compile_model

    start = time.perf_counter()
    graph = load_graph_args(args)
    model = compile_model(graph)
    elapsed = time.perf_counter() - start
    print(model)
    total = sum(p.numel() for p in model.parameters())
    print(f"{graph.spec.name or args.spec}: {total:,} parameters, built in {elapsed:.2f} s")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from specc.frontend import apply_cli_sets, parse
    from specc.graph import build_graph
    from specc.schema import validate
    from specc.shrink import shrink_overrides
    from specc.smoke import smoke_run

    raw = parse(args.spec, args.sets, args.search_paths)
    sets = shrink_overrides(raw)
    graph = build_graph(validate(apply_cli_sets(raw, sets)))
    report = smoke_run(graph, batch=args.batch, seq=args.seq)
    shrunk = ", ".join(s.removeprefix("params.") for s in sets) or "nothing to shrink"
    print(f"shrunk: {shrunk}")
    print(report)
    return 0
