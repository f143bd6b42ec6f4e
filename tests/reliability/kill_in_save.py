"""`specc train` that SIGKILLs itself in the middle of writing a checkpoint (not a test module).

    python kill_in_save.py --save K --line N -- <specc train args>

Counts the source lines executed inside `specc.runtime.runs.checkpoint` and `specc.atomic` while the K-th
checkpoint of the run is written (the files, their fsyncs, the marker, the
rename, the pruning of old checkpoints) and sends itself SIGKILL at the N-th:
a power cut at an arbitrary point of the save. `arm` also counts lines
in-process, so a test can draw N within a save's length.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType
from typing import Any

from specc import atomic
from specc.runtime.runs import checkpoint
from specc.cli import main

SOURCES = {checkpoint.__file__, atomic.__file__}  # the save, and the atomic folder write it goes through


def arm(save: int, line: int, counts: list[int] | None = None) -> None:
    """Replace `checkpoint.save` by one that kills the process at the `line`-th line executed in
    specc/runtime/runs/checkpoint.py or specc/atomic.py during the `save`-th save (never, for line 0); `counts` collects each save's
    number of lines."""
    real_save = checkpoint.save
    saves = 0
    lines = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal lines
        if frame.f_code.co_filename not in SOURCES:
            return None  # other files' functions are not traced
        if event == "line":
            lines += 1
            if lines == line and saves == save:
                os.kill(os.getpid(), signal.SIGKILL)
        return tracer

    def traced_save(*args: Any, **kwargs: Any) -> Any:
        nonlocal saves, lines
        saves, lines = saves + 1, 0
        sys.settrace(tracer)
        try:
            return real_save(*args, **kwargs)
        finally:
            sys.settrace(None)
            if counts is not None:
                counts.append(lines)

    checkpoint.save = traced_save  # type: ignore[assignment]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--save", type=int, required=True)
    ap.add_argument("--line", type=int, default=0)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    arm(args.save, args.line)
    sys.exit(main([a for a in args.rest if a != "--"]))
