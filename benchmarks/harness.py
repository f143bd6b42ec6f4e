"""Timing and memory measurement: variants interleaved in one process.

`interleave` runs every variant once per round (A B C A B C ...), after
warm-up rounds that are not counted, so that a machine whose speed drifts
(other processes, thermal limits) slows every variant alike; it reports the
median and the range over rounds, and page faults per call. `peak_bytes`
measures the largest amount of tensor memory alive at once during a call,
above what was alive before it (parameters and optimizer state excluded).
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


@dataclass(frozen=True)
class Timing:
    """Seconds per call over the counted rounds (each round's in `samples`, in order), and minor page faults per call."""

    median: float
    low: float
    high: float
    reps: int
    faults: float
    samples: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_ratio(baseline: list[list[float]], variant: list[float]) -> float:
    """Median over rounds of (the fastest baseline of the round) / (the variant in that round).

    Variants of one round ran seconds apart, so a machine that slows down for a while slows all of
    them: the per-round ratio cancels that drift, which a ratio of medians over rounds does not.
    """
    return statistics.median(min(b[r] for b in baseline) / v for r, v in enumerate(variant))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleave(variants: Mapping[str, Callable[[], Any]], reps: int, warmup: int = 1, device: str = "cpu",
               min_seconds: float = 0.0) -> dict[str, Timing]:
    """Time each variant `reps` times, one call of each per round, after `warmup` uncounted rounds.

    With `min_seconds`, a round calls each variant as many times as makes that long (decided on the
    warm-up) and records the mean, so that millisecond calls are not timed one by one.
    """
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    repeat = {name: 1 for name in variants}
    if min_seconds > 0:
        for name, fn in variants.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            repeat[name] = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in variants}
    faults = {name: 0 for name in variants}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: no collection pause lands in one variant's round
    try:
        _rounds(variants, reps, repeat, device, times, faults)
    finally:
        if was_enabled:
            gc.enable()
    return {name: Timing(statistics.median(ts), min(ts), max(ts), len(ts), faults[name] / (reps * repeat[name]), tuple(ts))
            for name, ts in times.items()}


def _rounds(variants: Mapping[str, Callable[[], Any]], reps: int, repeat: Mapping[str, int], device: str,
            times: dict[str, list[float]], faults: dict[str, int]) -> None:
    for _ in range(reps):
        for name, fn in variants.items():
            _sync(device)
            f0, t0 = _faults(), time.perf_counter()
            for _ in range(repeat[name]):
                fn()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / repeat[name])
            faults[name] += _faults() - f0


def time_once(fn: Callable[[], Any], device: str = "cpu") -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


class _LiveTensors(TorchDispatchMode):
    """Counts the bytes of every storage an op creates, until the storage is freed."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        # A view (W.t() inside a linear) or an in-place op's result (the optimizer's update of a weight) shares its
        # input's storage: counting it would add the weights to the step's peak a second time.
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta" and t.untyped_storage().data_ptr() not in inputs:
                storage = t.untyped_storage()
                key = id(storage)
                if key not in self.live and storage.nbytes():
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)


def peak_bytes(fn: Callable[[], Any], device: str = "cpu") -> int:
    """Peak bytes of tensors created during `fn()` and alive at the same time."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    tracker = _LiveTensors()
    with tracker:
        fn()
    return tracker.peak
