"""Shared CLI helpers: spec arguments and loading."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from specc.diagnostics import UserError as UserError  # re-exported: the CLI's commands raise it

if TYPE_CHECKING:  # the stages are imported by the commands that run them, so `--help` and `fmt` start light
    from specc.graph import LayerGraph
    from specc.schema import ModelSpec


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse reports anything else as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (.toml, or .spec for the DSL)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value, e.g. --set params.d_model=512 (repeatable)")
    p.add_argument("--search-path", dest="search_paths", action="append", default=[], metavar="DIR",
                   help="look for 'extends' bases in DIR too (after the spec's folder; before SPECC_PATH's folders and "
                        "the shipped specs); repeatable")


def load_spec_args(args: argparse.Namespace) -> ModelSpec:
    from specc.frontend import parse
    from specc.schema import validate

    return validate(parse(args.spec, args.sets, args.search_paths))


def load_graph_args(args: argparse.Namespace) -> LayerGraph:
    from specc.graph import build_graph

    return build_graph(load_spec_args(args))


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """--step N / --last: which checkpoint of a run a command reads (default: the best one the run kept)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--step", type=int, metavar="N", help="the checkpoint of step N (default: the best one kept)")
    group.add_argument("--last", action="store_true", help="the latest checkpoint instead of the best one")
