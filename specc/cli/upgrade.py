"""`specc upgrade`: rewrite older-format specs at the current format, in place, keeping comments."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from specc.cli.common import UserError
from specc.version import FORMAT_VERSION


def register(sub: Any) -> None:
    p = sub.add_parser("upgrade", help=f"rewrite specs of older formats at format {FORMAT_VERSION}, keeping comments")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file needs upgrading")
    p.set_defaults(handler=cmd_upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    from specc.atomic import write_text
    from specc.frontend import read_source
    from specc.migrate import upgrade_text

    stale = 0
    for name in args.files:
        file = Path(name)
        if file.suffix != ".toml":
            raise UserError(f"{file}: `specc upgrade` edits TOML specs (convert other forms with their own tools)")
        text = read_source(file)
        new, applied = upgrade_text(text, str(file))
        if not applied:
            print(f"{file}: already at format {FORMAT_VERSION}")
            continue
        stale += 1
        steps = "; ".join(f"{m.source} → {m.source + 1}: {m.summary}" for m in applied)
        if args.check:
            print(f"{file}: needs upgrading ({steps})")
            continue
        write_text(file, new, newline="")
        print(f"{file}: upgraded ({steps})")
    return 1 if args.check and stale else 0

