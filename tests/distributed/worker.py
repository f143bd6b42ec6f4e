"""`specc` as one process of a torchrun job, with a planned failure (for the distributed tests; not a test module).

    python -m torch.distributed.run ... worker.py [--fail RANK:STEP] [--kill RANK:STEP] [--audit DIR RUN] -- <specc args>

``--fail``: process RANK raises a data error right after optimizer step STEP, while the
others go on into the next step's collectives. ``--kill``: process RANK sends itself
SIGKILL after step STEP, on the first attempt only (a job torchrun restarts runs to the
end). ``--audit DIR RUN``: every process but rank 0 lists, in ``DIR/rank-N.txt``, each
file or folder it creates, writes, renames or removes under RUN (from Python's audit
events), so a test can see that only rank 0 writes.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from pathlib import Path
from typing import Any

from specc.runtime import distributed

from specc.runtime.train import jobs
from specc.runtime.errors import UserError
from specc.cli import main

WRITE_EVENTS = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate"}


def at(spec: str | None) -> tuple[int, int] | None:
    if not spec:
        return None
    rank, step = spec.split(":")
    return int(rank), int(step)


def plan(fail: tuple[int, int] | None, kill: tuple[int, int] | None) -> None:
    """Wrap `specc.runtime.train.jobs.train` so that the trainer's `on_step` hook carries out the plan."""
    rank = int(os.environ.get("RANK", "0"))

    def on_step(step: int) -> None:
        if fail == (rank, step):
            raise UserError(f"injected failure: the data after step {step} is unreadable on rank {rank}")
        if kill == (rank, step) and not distributed.restart_count():
            os.kill(os.getpid(), signal.SIGKILL)

    real_train = jobs.train

    def train(*args: Any, **kwargs: Any) -> Any:
        return real_train(*args, **{**kwargs, "on_step": on_step})

    jobs.train = train  # type: ignore[assignment]


def audit(folder: Path, run: Path) -> None:
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        return
    run_text = str(run.resolve())
    seen: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and len(args) >= 2:
            path, mode = args[0], args[1]
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writes and isinstance(path, (str, os.PathLike)) and os.path.abspath(path).startswith(run_text):
                seen.append(f"{event} {path}")
        elif event in WRITE_EVENTS and args and isinstance(args[0], (str, os.PathLike)):
            if os.path.abspath(args[0]).startswith(run_text):
                seen.append(f"{event} {args[0]}")

    sys.addaudithook(hook)
    report = folder / f"rank-{rank}.txt"
    atexit.register(lambda: report.write_text("".join(line + "\n" for line in seen)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--fail", metavar="RANK:STEP")
    ap.add_argument("--kill", metavar="RANK:STEP")
    ap.add_argument("--audit", nargs=2, metavar=("DIR", "RUN"))
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    plan(at(args.fail), at(args.kill))
    if args.audit:
        audit(Path(args.audit[0]), Path(args.audit[1]))
    sys.exit(main([a for a in args.rest if a != "--"]))
