"""Text verbs: fmt (canonical formatting), convert (TOML ⇄ DSL), explain (values and origins)."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path
from typing import Any

from specc.cli.common import add_spec_args
from specc.diagnostics import SpecError, UserError
from specc.version import SPEC_FORMATS as FORMATS  # not the front end's: registering these verbs loads no parser


def register(sub: Any) -> None:
    p = sub.add_parser("fmt", help="rewrite spec files (.toml, .spec) in canonical form, comments kept")
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files, or folders to search for them")
    p.add_argument("--check", action="store_true", help="change nothing; list files that would change, exit 1 if any")
    p.add_argument("--diff", action="store_true", help="change nothing; print what would change as a unified diff")
    p.set_defaults(handler=cmd_fmt)

    p = sub.add_parser("convert", help="convert a spec between TOML (.toml) and the DSL (.spec), losslessly")
    p.add_argument("spec", help="the spec to convert (the file as written: 'extends' is kept, not merged)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here; its suffix picks the format (default: stdout); "
                   "a relative 'extends' is rewritten to name the same base from FILE's folder")
    p.add_argument("--to", choices=sorted(s.lstrip(".") for s in FORMATS), help="format for stdout (default: the other one)")
    p.set_defaults(handler=cmd_convert)

    p = sub.add_parser("explain", help="the resolved spec, or one value, and where each value came from")
    add_spec_args(p)
    p.add_argument("key", nargs="?", help="a key path, e.g. params.d_ff, blocks.layer.nodes.attn.heads or h.3.attn.heads; "
                   "'extends': only the files the extends chain read")
    p.set_defaults(handler=cmd_explain)


# -- fmt ------------------------------------------------------------------------------------
_SPEC_TOML = re.compile(r"^\s*format\s*=", re.MULTILINE)


def spec_files(paths: list[str]) -> list[Path]:
    """The files named, and the specs under named folders, in a stable order.

    In a folder, hidden folders are skipped and a `.toml` file counts as a spec
    only if it has a `format = ...` line (so `specc fmt .` leaves pyproject.toml alone).
    """
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if _is_spec(p, path))
        elif path.exists():
            found.append(path)
        else:
            raise UserError(f"{name}: no such file or folder")
    return found


def cmd_fmt(args: argparse.Namespace) -> int:
    from specc.frontend import read_source
    from specc.frontend.formats import format_text, suffix_of

    changed, failed = [], []
    for path in spec_files(args.paths):
        suffix_of(str(path))
        text = read_source(path)
        try:
            out = format_text(text, str(path))
        except SpecError as err:
            print(err.render({str(path): text}), file=sys.stderr)
            failed.append(path)
            continue
        if out == text:
            continue
        changed.append(path)
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), out.splitlines(True), str(path), str(path)))
        elif args.check:
            print(f"would reformat {path}")
        else:
            path.write_text(out, encoding="utf-8")
            print(f"reformatted {path}")
    if failed:
        print(f"{len(failed)} file(s) could not be read", file=sys.stderr)
    return 1 if failed or (changed and (args.check or args.diff)) else 0


def _is_spec(path: Path, folder: Path) -> bool:
    if path.suffix not in FORMATS or not path.is_file():
        return False
    if any(part.startswith(".") for part in path.relative_to(folder).parts):
        return False
    return path.suffix != ".toml" or bool(_SPEC_TOML.search(path.read_text(encoding="utf-8", errors="replace")))


# -- convert --------------------------------------------------------------------------------
def cmd_convert(args: argparse.Namespace) -> int:
    from specc.frontend import read_source
    from specc.frontend.bases import relocate
    from specc.frontend.formats import read_document, suffix_of, write_document

    source = suffix_of(args.spec)
    if args.output:
        target = suffix_of(args.output)
    elif args.to:
        target = "." + args.to
    else:
        target = ".spec" if source == ".toml" else ".toml"
    text = read_source(Path(args.spec))
    doc = read_document(text, args.spec)
    ref = doc.raw.data.get("extends")
    if args.output and isinstance(ref, str):  # a relative base must still be found from the new folder
        moved = relocate(ref, Path(args.spec), Path(args.output))
        doc.raw.data["extends"] = moved.ref
        if moved.note:
            print(f"note: {moved.note}", file=sys.stderr)
    out = write_document(doc, target)
    if args.output:
        from specc.atomic import write_text

        try:
            write_text(args.output, out)
        except OSError as err:
            raise UserError(f"cannot write {args.output}: {err.strerror or err}") from None
    else:
        sys.stdout.write(out)
    return 0


# -- explain ------------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    from specc.explain import chain_lines, explain
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate

    raw = parse(args.spec, args.sets, args.search_paths)
    if args.key == "extends":
        print("\n".join(chain_lines(raw)) or f"{args.spec} extends no base")
        return 0
    if args.key is None:
        for line in chain_lines(raw):
            print(line)
    spec = graph = None
    try:
        spec = validate(raw)
        graph = build_graph(spec)
    except SpecError as err:  # still explain what is written; say why nothing is resolved
        print(err.render(raw.sources), file=sys.stderr)
        print("(the spec has errors: values are shown as written)", file=sys.stderr)
    items = explain(raw, spec, graph, args.key)
    for item in items:
        print("\n".join(item.lines(detail=args.key is not None)))
    return 0
