"""Versioning verbs: hash, diff, textconv / git-diff (git drivers), warm-start, graph, upgrade."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.cli.common import UserError
from specc.diagnostics import SpecError

if TYPE_CHECKING:  # the stages are imported by the verbs that run them, so registering these is light
    from specc.diff import Compat
    from specc.graph import LayerGraph


def register(sub: Any) -> None:
    p = sub.add_parser("hash", help="content hash of a spec's resolved architecture (and of its runtime sections)")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files, or run / checkpoint folders")
    p.add_argument("--all", action="store_true", help="also the hash of each runtime section (train, objective, ...)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--canonical", action="store_true", help="print the canonical form that the hash covers")
    _spec_options(p)
    p.set_defaults(handler=cmd_hash)

    p = sub.add_parser("diff", help="semantic diff of two specs, or of a spec and a checkpoint")
    p.add_argument("old", help="spec file, or run / checkpoint folder")
    p.add_argument("new", help="spec file, or run / checkpoint folder")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--markdown", action="store_true", help="Markdown, e.g. for a pull request")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--context", type=int, default=None, help="keys attention sees, for FLOPs (default: max_seq or 512)")
    p.add_argument("--map", dest="mapping", action="append", default=[], metavar="NEW=OLD",
                   help="load layers from elsewhere, e.g. h.6:12=h.0:6 (repeatable)")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the architectures differ")
    _spec_options(p)
    p.set_defaults(handler=cmd_diff)

    p = sub.add_parser("textconv", help="a spec resolved into stable lines, for git's textconv")
    p.add_argument("spec")
    p.add_argument("--base-dir", action="append", default=[], metavar="DIR",
                   help="where to look for `extends` bases when the file sits elsewhere (git's temporary copies)")
    p.set_defaults(handler=cmd_textconv)

    p = sub.add_parser("git-diff", help="git external diff driver: semantic diff of a spec's two versions")
    p.add_argument("git_args", nargs="+", metavar="ARG",
                   help="what git passes: path old-file old-hex old-mode new-file new-hex new-mode [new-path info]")
    p.set_defaults(handler=cmd_git_diff)

    p = sub.add_parser("git-setup", help="make git diff and git log -p show spec files semantically (this repository)")
    p.add_argument("--pattern", action="append", default=[], metavar="GLOB",
                   help="which files are specs (default: *.toml); repeatable")
    p.add_argument("--command", default=None, metavar="CMD",
                   help="how git should run specc (default: `specc` if on PATH, else this Python with -m specc)")
    p.set_defaults(handler=cmd_git_setup)

    p = sub.add_parser("warm-start", help="a new architecture's first checkpoint, loaded from an old checkpoint where it fits")
    p.add_argument("checkpoint", help="run or checkpoint folder to take weights from")
    p.add_argument("spec", help="the new spec")
    p.add_argument("--out", required=True, help="new run folder")
    p.add_argument("--map", dest="mapping", action="append", default=[], metavar="NEW=OLD",
                   help="fill layers from other layers, e.g. h.6:12=h.0:6 to grow 6 → 12 layers (repeatable)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the new spec (repeatable)")
    _spec_options(p)
    p.set_defaults(handler=cmd_warm_start)

    from specc.cli import graphviz, upgrade

    graphviz.register(sub)
    upgrade.register(sub)


def _spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--search-path", dest="search_paths", action="append", default=[], metavar="DIR",
                   help="look for 'extends' bases in DIR too (after the spec's folder; before SPECC_PATH's folders and "
                        "the shipped specs); repeatable")


# -- loading either side: a spec file or a checkpoint -----------------------------------------
@dataclass
class Side:
    label: str
    graph: LayerGraph
    tensors: dict[str, tuple[int, ...]] | None = None  # a checkpoint's real tensors (owner names)


def spec_graph(path: str | Path, search_paths: list[str], text: str | None = None) -> LayerGraph:
    """Parse, validate and build a spec's graph (`text` given: that text, placed at `path`)."""
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate

    return build_graph(validate(parse(path, (), search_paths, text=text)))


def load_side(path: str, search_paths: list[str]) -> Side:
    target = Path(path)
    if target.is_dir():
        from specc.runtime.runs import checkpoint, lineage

        ckpt = checkpoint.require_latest(target)
        graph = lineage.stored_graph(ckpt)
        tensors, _ = lineage.stored_tensors(ckpt, graph)
        return Side(str(ckpt), graph, tensors)
    return Side(path, spec_graph(path, search_paths))


def side_compat(old: Side, new: Side, mapping: list[str]) -> Compat:
    """Tensors of a checkpoint of the old side in the new one; a checkpoint on the new side only is the source."""
    from specc.diff import compat_table

    if new.tensors is not None and old.tensors is None:
        return compat_table(new.tensors, old.graph.parameter_names(), mapping, source_label=new.label, target_label=old.label)
    source = old.tensors if old.tensors is not None else old.graph.parameter_names()
    target = new.tensors if new.tensors is not None else new.graph.parameter_names()
    return compat_table(source, target, mapping, source_label=old.label, target_label=new.label)


# -- verbs ------------------------------------------------------------------------------------
def cmd_hash(args: argparse.Namespace) -> int:
    from specc.canonical import canonical_graph_json, hashes

    found = {}
    for path in args.specs:
        side = load_side(path, args.search_paths)
        if args.canonical:
            print(canonical_graph_json(side.graph))
            continue
        found[side.label] = hashes(side.graph)
    if args.canonical:
        return 0
    if args.json:
        print(json.dumps(found, indent=1))
        return 0
    for label, values in found.items():
        if not args.all:
            print(f"{values['architecture']}  {label}")
            continue
        print(label)
        for section, value in values.items():
            print(f"  {section:<13} {value}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from specc.diff import diff_graphs, render_markdown, render_text, to_json

    old, new = load_side(args.old, args.search_paths), load_side(args.new, args.search_paths)
    compat = side_compat(old, new, args.mapping)
    diff = diff_graphs(old.graph, new.graph, old.label, new.label, args.context, compat)
    if args.json:
        print(to_json(diff))
    elif args.markdown:
        print(render_markdown(diff), end="")
    else:
        colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
        print(render_text(diff, colour))
    return 1 if args.exit_code and not diff.same_architecture else 0


def cmd_textconv(args: argparse.Namespace) -> int:
    """Print the resolved listing; a spec that does not resolve prints as it is, with the reason."""
    from specc.diff.listing import listing

    file = Path(args.spec)
    text = file.read_text(encoding="utf-8", errors="replace")
    try:
        print(listing(_graph_at(text, file, [Path(d) for d in args.base_dir])), end="")
    except SpecError as err:
        first = err.diagnostics[0]
        print(f"# specc: cannot resolve this spec ({first.code}: {first.message}); its text as it is:")
        print(text, end="")
    return 0


def _graph_at(text: str, file: Path, base_dirs: list[Path]) -> LayerGraph:
    """The graph of spec `text`, placed where its `extends` base is found: next to `file`, else in a base dir."""
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate

    try:
        raw = parse(file, (), (), text=text)
    except SpecError as err:
        if not any(d.code == "E004" for d in err.diagnostics):
            raise
        for folder in base_dirs or _tracked_folders(file.name):  # git hands textconv a temporary copy
            try:
                raw = parse(folder / file.name, (), (), text=text)
                break
            except SpecError:
                continue
        else:
            raise
    return build_graph(validate(raw))


def _tracked_folders(name: str) -> list[Path]:
    """Folders of the git work tree (git runs textconv in its top folder) holding a file called `name`."""
    import subprocess

    try:
        found = subprocess.run(["git", "ls-files", "-z", "--", name, f"*/{name}"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(p).parent for p in found.split("\0") if p]


def cmd_git_diff(args: argparse.Namespace) -> int:
    """git's GIT_EXTERNAL_DIFF protocol; runs in the work tree's top folder, so `extends` resolve there."""
    from specc.diff import diff_graphs, render_text
    from specc.diff.listing import listing

    if len(args.git_args) < 7:
        raise UserError("git-diff expects what git passes: path old-file old-hex old-mode new-file new-hex new-mode")
    path, old_file, _, _, new_file = args.git_args[:5]
    new_path = args.git_args[7] if len(args.git_args) >= 9 else path
    old_text, new_text = _blob(old_file), _blob(new_file)
    try:
        sides = [Side(f"{tag}/{p}", spec_graph(p, [], text=t)) if t is not None else None
                 for tag, p, t in (("a", path, old_text), ("b", new_path, new_text))]
    except SpecError as err:
        first = err.diagnostics[0]
        print(f"specc diff a/{path} b/{new_path}: not a resolvable spec on one side ({first.code}: {first.message}); "
              "plain text diff follows")
        _plain(path, new_path, old_text or "", new_text or "")
        return 0
    old, new = sides
    if old is None or new is None:
        present = new or old
        assert present is not None
        print(f"specc diff a/{path} b/{new_path}: {'new' if old is None else 'deleted'} spec")
        print(listing(present.graph), end="")
        return 0
    print(render_text(diff_graphs(old.graph, new.graph, old.label, new.label, None, side_compat(old, new, []))))
    return 0


def _blob(name: str) -> str | None:
    if name == "/dev/null":
        return None
    return Path(name).read_text(encoding="utf-8", errors="replace")


def _plain(old_path: str, new_path: str, old: str, new: str) -> None:
    sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{old_path}", f"b/{new_path}"))


def cmd_git_setup(args: argparse.Namespace) -> int:
    """Append `PATTERN diff=specc` to .gitattributes and set the driver in the repository's config."""
    import shlex
    import shutil
    import subprocess

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"git {' '.join(argv)}: {done.stderr.strip() or 'failed'}")
        return done.stdout.strip()

    top = Path(git("rev-parse", "--show-toplevel"))
    command = args.command or ("specc" if shutil.which("specc") else f"{shlex.quote(sys.executable)} -m specc")
    git("config", "diff.specc.textconv", f"{command} textconv")
    git("config", "diff.specc.cachetextconv", "false")
    git("config", "diff.specc.command", f"{command} git-diff")
    attributes = top / ".gitattributes"
    lines = attributes.read_text().splitlines() if attributes.exists() else []
    added = [f"{pattern} diff=specc" for pattern in args.pattern or ["*.toml"] if f"{pattern} diff=specc" not in lines]
    if added:
        attributes.write_text("\n".join(lines + added) + "\n")
    print(f"git diff now shows the semantic diff of {', '.join(args.pattern or ['*.toml'])} "
          f"(diff.specc.command = {command} git-diff);")
    print(f"git log -p shows resolved listings (diff.specc.textconv = {command} textconv), "
          "or the semantic diff with git log -p --ext-diff")
    if added:
        print(f"added to {attributes}: {'; '.join(added)} (commit it so that clones see specs as specs)")
    return 0


def cmd_warm_start(args: argparse.Namespace) -> int:
    from specc.runtime.train.warm_start import warm_start

    done = warm_start(args.checkpoint, args.spec, args.out, args.sets, args.search_paths, args.mapping)
    print(done.report())
    sets = "".join(f" --set {s}" for s in args.sets)
    print(f"continue training with: specc train {args.spec} --resume {args.out}{sets}")
    return 0
