"""glibc malloc settings for training loops: freed memory is kept for the next step.

By default glibc serves large blocks (a layer's activations, a gradient) with
fresh `mmap`s and unmaps them when freed, and trims the heap top, so every
step faults the same memory in again: tens of thousands of page faults per
step, each zero-filling a page. A training step (or a forward pass) allocates
the same sizes every time, so keeping freed memory in the process (no `mmap`
for blocks, a high trim threshold) turns those faults into reuse. The `specc`
commands that run a model (train, finetune, eval, generate, predict) apply this
once at start; `SPECC_MALLOC=default` leaves glibc's defaults. Other C
libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
KEEP_BYTES = 1 << 30  # free memory at the heap top kept rather than returned to the system
TOP_PAD = 64 << 20  # heap growth per brk: fewer, larger extensions


def tune_malloc() -> bool:
    """Apply the settings above to this process; False where they do not apply (not glibc, or opted out)."""
    if os.environ.get("SPECC_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # no glibc: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in
               ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, KEEP_BYTES), (M_TOP_PAD, TOP_PAD)))
