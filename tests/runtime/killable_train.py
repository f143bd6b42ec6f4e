"""`specc train` with a planned death, for the kill-and-resume tests (not a test module).

    python killable_train.py --kill-at STEP [--signal KILL|INT] [--mid-step N] [--pace S] -- <specc train args>

Runs the real `specc train` command line. At optimizer step STEP it sends
itself the signal: by default right after the step (between steps, after any
checkpoint that step writes); with ``--mid-step N``, inside the next step,
while it builds its N-th micro-batch (the gradients of the earlier ones already
accumulated), as a Ctrl-C arriving at an arbitrary moment would. ``--pace``
sleeps after every step so that another process can kill this one at a
moment of its own choosing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from specc.runtime.train import jobs, loop
from specc.cli import main

SIGNALS = {"KILL": signal.SIGKILL, "INT": signal.SIGINT}


def arm(kill_at: int, sig: signal.Signals, mid_step: int, pace: float) -> None:
    """Wrap `specc.runtime.train.jobs.train` so that the trainer's `on_step` hook carries out the plan."""
    armed = 0  # batches still to read before the signal
    real_get = loop.BatchSource.get

    def get(self: loop.BatchSource, first: int, size: int) -> object:
        nonlocal armed
        batch = real_get(self, first, size)
        if armed:  # only the training stream is read between on_step and the next step's end
            armed -= 1
            if not armed:
                os.kill(os.getpid(), sig)
        return batch

    def on_step(step: int) -> None:
        nonlocal armed
        if pace:
            time.sleep(pace)
        if step == kill_at:
            if mid_step:
                armed = mid_step
            else:
                os.kill(os.getpid(), sig)

    real_train = jobs.train

    def train(*args: object, **kwargs: object) -> object:
        return real_train(*args, **{**kwargs, "on_step": on_step})

    loop.BatchSource.get = get  # type: ignore[method-assign]
    jobs.train = train  # type: ignore[assignment]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--kill-at", type=int, default=0)
    ap.add_argument("--signal", choices=sorted(SIGNALS), default="KILL")
    ap.add_argument("--mid-step", type=int, default=0, metavar="N")
    ap.add_argument("--pace", type=float, default=0.0)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    arm(args.kill_at, SIGNALS[args.signal], args.mid_step, args.pace)
    sys.exit(main([a for a in args.rest if a != "--"]))
