"""Where an `extends` base is found, and the folders a spec may read from.

``extends = "gpt-tiny.toml"`` is looked up, in order, in the folder of the
spec that writes it, in each search folder (``--search-path DIR``, then the
folders of ``SPECC_PATH``), and in the reference specs shipped with specc.
``extends = "specc:gpt-tiny"`` names a shipped spec only (the suffix may be
left out: ``.toml`` first, then ``.spec``).

The security rule: a candidate is read only if it resolves (symlinks
followed) inside one of the allowed roots, the top spec's folder, a search
folder or the shipped specs, and only if it is a regular file. The first
candidate that exists is used; one that resolves outside every root is an
error, never skipped, so a link that escapes cannot be shadowed silently.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from specc.diagnostics import Diagnostic, Span, SpecError
from specc.raw import BaseFile

LIBRARY = "specc:"  # the prefix of a shipped spec's name
SPEC_SUFFIXES = (".toml", ".spec")
SHIPPED = "the specs shipped with specc"
ENV = "SPECC_PATH"


def shipped_specs() -> Path | None:
    """The reference specs: package data of an installed specc (``specc/specs``), or a source checkout's ``specs/``."""
    package = importlib.resources.files("specc")
    if not isinstance(package, Path):  # a zipped install: its specs are not files we can confine to a folder
        return None
    checkout = package.parent
    for folder in (package / "specs", checkout / "specs" if (checkout / "pyproject.toml").is_file() else None):
        if folder is not None and folder.is_dir():
            return folder.resolve()
    return None


def env_search_paths(environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    """The folders of ``SPECC_PATH`` (separated by os.pathsep, empty entries ignored); read by the CLI, not by `parse`."""
    value = (os.environ if environ is None else environ).get(ENV, "")
    return [p for p in value.split(os.pathsep) if p.strip()]


@dataclass(frozen=True)
class Roots:
    """The folders `extends` may read from."""

    top: Path  # the folder of the spec being parsed
    search: tuple[Path, ...]  # --search-path folders, then SPECC_PATH's
    shipped: Path | None

    @classmethod
    def of(cls, file: Path, search_paths: Sequence[str | os.PathLike[str]]) -> Roots:
        return cls(file.resolve().parent, tuple(Path(p).resolve() for p in search_paths), shipped_specs())

    def all(self) -> list[Path]:
        return [self.top, *self.search, *([self.shipped] if self.shipped else [])]

    def allow(self, real: Path) -> bool:
        return any(real == root or root in real.parents for root in self.all())


def resolve_base(file: Path, ref: str, roots: Roots, span: Span | None) -> BaseFile:
    """The file `ref` (written in `file`'s `extends`) names; E004 if it escapes, is no regular file, or is nowhere."""
    for candidate, found_in in _candidates(file, ref, roots, span):
        try:
            real = candidate.resolve()
        except (ValueError, OSError) as err:  # a NUL byte, a name too long for the system, a symlink loop
            raise SpecError([Diagnostic("E004", f"'extends' path {ref!r} is not a usable file name ({err})", span)]) from None
        if not roots.allow(real):
            raise SpecError([Diagnostic("E004", f"'extends' path '{ref}' leaves the spec's folder", span,
                                        "pass --search-path DIR to allow bases from another folder")])
        if not os.path.lexists(candidate):
            continue
        if not real.is_file():
            raise SpecError([Diagnostic("E004", f"'extends' path '{ref}' is not a regular file ({candidate})", span)])
        return BaseFile(ref, str(candidate), found_in, str(file))
    raise SpecError([Diagnostic("E004", f"base spec '{ref}' not found", span, _searched(ref, roots))])


def _candidates(file: Path, ref: str, roots: Roots, span: Span | None) -> list[tuple[Path, str]]:
    if ref.startswith(LIBRARY):
        return _library(ref, roots, span)
    path = Path(ref)
    if path.is_absolute() or path.drive:
        raise SpecError([Diagnostic("E004", "'extends' must be a relative path", span,
                                    "absolute paths are refused so specs stay portable and hermetic")])
    found = [(file.parent / path, "the spec's folder")]
    found += [(folder / path, f"search path {folder}") for folder in roots.search]
    if roots.shipped is not None:
        found.append((roots.shipped / path, SHIPPED))
    return found


def _library(ref: str, roots: Roots, span: Span | None) -> list[tuple[Path, str]]:
    name = ref[len(LIBRARY):]
    path = Path(name)
    if not name or path.is_absolute() or path.drive or ".." in path.parts:
        raise SpecError([Diagnostic("E004", f"'{ref}' is not the name of a shipped spec", span,
                                    "write e.g. extends = \"specc:gpt-tiny\"")])
    if roots.shipped is None:
        raise SpecError([Diagnostic("E004", f"'{ref}' names a shipped spec, but this specc installation has none", span)])
    names = [name] if path.suffix in SPEC_SUFFIXES else [name + s for s in SPEC_SUFFIXES]
    return [(roots.shipped / n, SHIPPED) for n in names]


def _searched(ref: str, roots: Roots) -> str:
    """Where a missing base was looked for (no machine-specific paths but the ones the user gave)."""
    where = [] if ref.startswith(LIBRARY) else ["the spec's folder", *(f"search path {p}" for p in roots.search)]
    where += [SHIPPED] if roots.shipped is not None else []
    listed = ", ".join(where[:-1]) + (" and " if len(where) > 1 else "") + where[-1]
    return f"looked in {listed}; --search-path DIR (or {ENV}) adds a folder"


@dataclass(frozen=True)
class Moved:
    """What `extends` becomes when a spec is written elsewhere, and a note when the user must act on it."""

    ref: str
    note: str | None = None


def relocate(ref: str, spec: Path, new: Path, search_paths: Sequence[str | os.PathLike[str]] = ()) -> Moved:
    """`ref` (the `extends` of `spec`) rewritten so that it names the same base from `new`'s folder.

    A base found in the spec's folder gets a path relative to the new folder; one that would have to leave that
    folder is a shipped spec's library name when it is one (``specc:gpt-tiny.toml``), else the relative path
    with a note (it needs --search-path). A library name, a base found through a search path or among the
    shipped specs, or one not found at all is kept as written (the last with a note)."""
    if ref.startswith(LIBRARY) or Path(ref).is_absolute():
        return Moved(ref)
    # Only paths are computed here, nothing is read: a base beside the spec counts even where `parse` would want
    # a search path for it (a spec converted back from where an earlier conversion put it).
    target = os.path.normpath(os.path.abspath(spec.parent / ref))
    if not os.path.lexists(target):
        try:  # found through a search path or among the shipped specs: the same from any folder
            resolve_base(spec, ref, Roots.of(spec, search_paths), None)
        except SpecError as err:
            return Moved(ref, f"extends '{ref}' is kept as written: {err.diagnostics[0].message}")
        return Moved(ref)
    rel = Path(os.path.relpath(target, os.path.abspath(new.parent))).as_posix()
    if not rel.startswith("../"):
        return Moved(rel)
    shipped = shipped_specs()
    real = Path(target).resolve()
    if shipped is not None and shipped in real.parents:
        return Moved(LIBRARY + real.relative_to(shipped).as_posix())
    return Moved(rel, f"extends '{rel}' leaves the folder of {new}: check it with --search-path {Path(target).parent}")
