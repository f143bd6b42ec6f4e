"""`specc graph`: the layer graph as DOT, SVG or PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from specc.cli.common import UserError, add_spec_args, load_graph_args

FORMATS = ("dot", "svg", "png")


def register(sub: Any) -> None:
    p = sub.add_parser("graph", help="the layer graph as DOT, or a picture (SVG, PNG)")
    add_spec_args(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write FILE (.dot, .svg or .png); default: DOT on stdout")
    p.add_argument("--expand", nargs="*", metavar="BLOCK", default=None,
                   help="draw blocks node by node: the named ones, or every block when no name is given "
                        "(default: each block or repeated stack is one box)")
    p.add_argument("--engine", choices=["auto", "graphviz", "builtin"], default="auto",
                   help="how to draw SVG: Graphviz's dot when installed (auto), or specc's own layout")
    p.set_defaults(handler=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from specc.picture import graphviz_available, render_with_graphviz, to_dot, to_svg, view

    graph = load_graph_args(args)
    blocks = {g.name for g in graph.groups if g.node is None}
    if args.expand:
        unknown = sorted(set(args.expand) - blocks)
        if unknown:
            raise UserError(f"--expand: no block or repeated stack named {', '.join(unknown)} "
                            f"(there are: {', '.join(sorted(blocks)) or 'none'})")
    expand = set() if args.expand is None else set(args.expand) if args.expand else None
    dot = to_dot(view(graph, expand))
    if args.output is None:
        print(dot, end="")
        return 0
    out = Path(args.output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UserError(f"cannot write '{out.suffix or out.name}': give a .dot, .svg or .png file")
    if fmt == "dot":
        out.write_text(dot)
    elif fmt == "svg" and (args.engine == "builtin" or (args.engine == "auto" and not graphviz_available())):
        out.write_text(to_svg(view(graph, expand)))
        if args.engine == "auto":
            print("Graphviz (dot) is not installed: drew the SVG with specc's built-in layout "
                  "(install graphviz for Graphviz's)", file=sys.stderr)
    else:
        out.write_bytes(render_with_graphviz(dot, fmt))
    print(f"wrote {out}")
    return 0
