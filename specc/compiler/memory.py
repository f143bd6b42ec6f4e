"""How much memory a device has room for, without opening a file: refusals made before allocating.

A model or a batch too large for the machine used to be found out by
allocating it: gigabytes and seconds spent, then a `MemoryError` wherever it
happened to land (once inside the very handler that reports it), or an OOM
kill with no message. `fits` answers first. On the CPU, the bound is the
machine's physical memory and, under an address-space limit (``ulimit -v``),
whether that much address space can still be reserved (an untouched reservation
costs no memory and is returned at once). On a GPU, its free memory.
"""

from __future__ import annotations

import resource

import torch

from specc.hostmem import physical_memory


def room(device: str | torch.device) -> int | None:
    """Bytes that an allocation on `device` may take at most, or None where that cannot be told (meta)."""
    kind = torch.device(device).type
    if kind == "cuda":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    if kind != "cpu":
        return None
    return physical_memory()


def fits(size: int, device: str | torch.device) -> bool:
    """Whether `size` bytes can be allocated on `device`, as far as can be told before allocating them."""
    limit = room(device)
    if limit is not None and size > limit:
        return False
    if torch.device(device).type == "cpu" and _address_space_limited():
        return _can_reserve(size)
    return True


def _address_space_limited() -> bool:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft != resource.RLIM_INFINITY


def _can_reserve(size: int) -> bool:
    """Whether `size` bytes of address space are left: an uninitialised (never touched) buffer is asked for and
    dropped at once."""
    try:
        torch.empty(size, dtype=torch.uint8)
    except (RuntimeError, MemoryError):
        return False
    return True
