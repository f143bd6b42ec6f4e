"""Data verbs: `specc data inspect SPEC` shows what a spec's data looks like once read."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="look at a spec's data before training")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    q = verbs.add_parser("inspect", help="examples per split, three parsed examples, label distribution, token-length "
                                         "percentiles and how many examples max_len cuts (a pretraining spec: its corpus)")
    q.add_argument("spec")
    q.add_argument("--task", metavar="NAME", help="which of the spec's [tasks.NAME] (needed when it declares several)")
    q.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    q.add_argument("--search-path", dest="search_paths", action="append", default=[], metavar="DIR")
    q.set_defaults(handler=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    from specc.runtime.train.inspect_data import inspect

    inspect(args.spec, args.task, args.sets, args.search_paths)
    return 0
