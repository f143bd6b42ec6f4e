"""`metrics.jsonl`: an append-only log of a run that a resume repairs, and whose failed writes stop the run cleanly.

A kill mid-line or a disk filling up leaves a torn last line; a hand edit may
leave a line that is not a metrics record. A resume must not be blocked by
either: `repair` keeps the records up to the resumed step, drops a torn last
line with a warning, and moves any other unreadable line to
``metrics.jsonl.dropped`` (said, counted, never silently lost). A write that
fails (a full disk, a quota) is a `UserError` naming the intact checkpoint to
resume from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from specc import jsonfile
from specc.atomic import write_bytes
from specc.runtime.runs import checkpoint
from specc.runtime.errors import UserError
from specc.runtime.trackers import open_trackers


def repair(path: Path, resume_step: int, warn: Callable[[str], None]) -> list[bytes]:
    """The lines of `path` to keep when resuming at `resume_step` (each a JSON object with a whole `step` at most
    that); the unreadable ones go to ``<path>.dropped``, and `warn` says what was dropped."""
    if path.is_symlink() or path.exists() and not path.is_file():
        raise UserError(f"{path} is not a regular file (the run's metrics log); move it out of the way and resume")
    if not resume_step or not path.exists():
        return []
    data = _read(path)
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # bytes after the last newline: a line cut short
    kept, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        step = _step(line)
        if step is None:
            bad.append((number, line))
        elif step <= resume_step:
            kept.append(line)
    if torn.strip():
        warn(f"warning: {path}: dropped a torn last line ({len(torn)} bytes; the run was cut off while writing it)")
    if bad:
        _keep_aside(path, [line for _, line in bad])
        first = ", ".join(str(n) for n, _ in bad[:5])
        warn(f"warning: {path}: {len(bad)} line(s) are not metrics records (line {first}); "
             f"moved to {path.name}.dropped")
    return kept


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None


def _step(line: bytes) -> int | None:
    """The step of a metrics record, or None when the line is not one."""
    try:
        record = jsonfile.parse(line)
    except jsonfile.BadJSON:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


def _keep_aside(path: Path, lines: list[bytes]) -> None:
    aside = path.with_name(path.name + ".dropped")
    try:
        with open(aside, "ab") as fh:
            fh.write(b"".join(line + b"\n" for line in lines))
    except OSError as err:
        raise UserError(f"cannot write {aside}: {err.strerror or err}") from None


class MetricsLog:
    """`metrics.jsonl`, one line per logging step; on resume, repaired and cut back to the checkpoint's step.

    The same scalars also go to the trackers `[train] loggers` names (specc.runtime.trackers).
    """

    def __init__(self, path: Path, resume_step: int, warn: Callable[[str], None], loggers: Sequence[str] = ()):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = repair(path, resume_step, warn)
            write_bytes(path, b"".join(line + b"\n" for line in kept))  # replaced whole: a kill while rewriting loses no line
            self.fh = open(path, "a", encoding="utf-8")
        except OSError as err:
            self._failed(err)
        self.trackers = open_trackers(loggers, path.parent, resume_step)

    def write(self, record: dict[str, Any]) -> None:
        try:
            self.fh.write(json.dumps(record) + "\n")
            self.fh.flush()
        except OSError as err:
            self._failed(err)
        scalars = {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
        for tracker in self.trackers:
            tracker.log(scalars, record["step"])

    def close(self) -> None:
        try:
            self.fh.close()
        except OSError as err:
            self._failed(err)
        for tracker in self.trackers:
            tracker.close()

    def _failed(self, err: OSError) -> None:
        """Stop the run: a log that cannot be written is a run that cannot be followed (the checkpoints are intact)."""
        before = checkpoint.latest(self.path.parent)
        kept = f"the last complete checkpoint, {before.name}, is intact; resume from it once there is room" if before \
            else "no checkpoint was written yet"
        raise UserError(f"cannot write {self.path}: {err.strerror or err}; {kept}") from None
