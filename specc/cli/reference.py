"""`specc ops`: the reference of ops, objectives and task types, read from their records."""

from __future__ import annotations

import argparse
from typing import Any

from specc.diagnostics import UserError, did_you_mean


def register(sub: Any) -> None:
    p = sub.add_parser("ops", help="every op, objective and task type; `specc ops NAME`: one in full "
                       "(inputs, parameters, output shape, an example in TOML and DSL)")
    p.add_argument("name", nargs="?", help="an op, objective or task type")
    p.add_argument("--markdown", action="store_true", help="everything in full as Markdown (docs/ops.md)")
    p.set_defaults(handler=cmd_ops)


def cmd_ops(args: argparse.Namespace) -> int:
    from specc import reference

    if args.markdown:
        print(reference.markdown(), end="")
    elif args.name is None:
        print(reference.overview())
    else:
        found = reference.find(args.name)
        if not found:
            names = [name for _, name, _ in reference.listing()]
            raise UserError(f"no op, objective or task type is named '{args.name}'"
                            + (f"; {did_you_mean(args.name, names)}" if did_you_mean(args.name, names) else "")
                            + " (`specc ops` lists them)")
        print("\n\n".join(reference.detail(e) for e in found))
    return 0
