"""Atomic writes: a file or folder appears whole under its final name, or not at all.

Everything is written to a temporary sibling (same folder, so the final rename
never crosses file systems), flushed to disk, then renamed over the target with
`os.replace`; on any failure the temporary is removed and the target is left as
it was. Temporaries are named ``.tmp-NAME-PID`` so a folder's cleanup can find
the leftovers of a process that was killed mid-write.

Imports nothing of specc, so every layer may use it.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["write_text", "write_bytes", "atomic_file", "atomic_dir", "temporary_name", "fsync_dir"]


def temporary_name(target: Path) -> Path:
    """Where a write of `target` is staged: a hidden sibling that names this process."""
    return target.with_name(f".tmp-{target.name}-{os.getpid()}")


@contextmanager
def atomic_file(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it is synced and renamed to `target`."""
    final = Path(target)
    tmp = temporary_name(final)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def write_text(target: str | os.PathLike[str], text: str, encoding: str = "utf-8", newline: str | None = None) -> None:
    """Replace `target`'s content with `text`, atomically."""
    with atomic_file(target) as tmp, open(tmp, "w", encoding=encoding, newline=newline) as fh:
        fh.write(text)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Replace `target`'s content with `data`, atomically."""
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_dir(target: str | os.PathLike[str], replace: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder to fill; on a clean exit every file in it is synced and the folder is
    renamed to `target`. An existing `target` is an `OSError` from the rename unless `replace`: then the old
    folder is first renamed out of the way whole (so no reader sees half of it) and removed afterwards."""
    final = Path(target)
    tmp = temporary_name(final)
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed process that had this id
    old = final.with_name(f".tmp-old-{final.name}-{os.getpid()}")
    try:
        tmp.mkdir(parents=True)
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                _fsync(f)
        if replace and final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself has still happened
    finally:
        os.close(fd)
