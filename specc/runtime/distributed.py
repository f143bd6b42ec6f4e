"""One process or many: joining the processes `torchrun` starts, and what they must agree on.

specc has no launcher and no communication layer of its own. `torchrun` (PyTorch's
``torch.distributed.run``) starts the processes and tells each its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``);
`session` joins them into one process group: gloo for CPU tensors, and NCCL for CUDA
tensors where a GPU is present. A process started without torchrun joins nothing, and
every function here is then a no-op, so the one-process path is the plain one. (Under
torchrun a single process joins a group of one, and trains through DDP or FSDP2 all the same.)

What the processes agree on, and how:

- the batch (`split_batch`): the declared global batch is cut into equal per-process
  shares, each process taking its own slice of every global batch by sample index;
- preparation (`wait_for_leader`): one process per machine trains the tokenizer and writes
  the token stores into the shared cache while the others wait, then they read them;
- numbers (`sum_over_ranks`, `any_rank`, `from_rank0`): loss totals and counts are summed
  (never averages of averages), a stop request anywhere stops all at the same step;
- failure (`session`): the first process to fail shows its error; the others, whose
  collectives then break, exit quietly with a non-zero status instead of repeating it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout

from specc.runtime.runs import checkpoint
from specc.runtime.errors import UserError
from specc.runtime.batch import LossSums

T = TypeVar("T")

# Messages of a collective whose peer has gone (gloo's TCP pair, NCCL's watchdog): a
# consequence of another process's failure, not a failure of this one.
_PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "remote worker", "Broken pipe",
              "NCCL communicator was aborted", "has been aborted")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that prints, logs and writes checkpoints."""
        return self.rank == 0


def joined() -> bool:
    """Whether this process is in a process group (see `session`)."""
    return dist.is_available() and dist.is_initialized()


def ranks() -> Ranks:
    """The current process's place (one process, rank 0, when no process group is joined)."""
    if joined():
        return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Ranks()


def launched() -> bool:
    """Whether torchrun (or another launcher setting its variables) started this process. Then it joins the
    process group even as the only process: `torchrun --nproc-per-node 1` runs the multi-process path
    (DDP or FSDP2 over one process; NCCL on one GPU)."""
    return dist.is_available() and "WORLD_SIZE" in os.environ and "RANK" in os.environ


def restart_count() -> int:
    """How many times torchrun has restarted the processes (`--max-restarts`); 0 on the first attempt."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def device_for(device: torch.device) -> torch.device:
    """A process's own GPU: `cuda` means `cuda:LOCAL_RANK` when several processes share a machine."""
    if device.type == "cuda" and device.index is None and joined():
        return torch.device("cuda", torch.cuda.current_device())
    return device


@contextlib.contextmanager
def session() -> Iterator[Ranks]:
    """Join torchrun's process group for the duration of one job (nothing to join for one process).

    On an error the first process to fail re-raises it, to be shown; any other process (its
    collectives broken by the first one's exit) leaves with `SystemExit(1)` and says nothing.
    A stop by Ctrl-C (agreed by all processes) is reported by rank 0 alone.
    """
    if not launched() or dist.is_initialized():
        yield ranks()
        return
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"  # each tensor's device picks its backend
    else:
        backend = "gloo"
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    store = _job_store(rank, world)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world)
    me = ranks()
    failures = _FailureBoard(me, store)
    try:
        yield me
    except KeyboardInterrupt:
        if not me.main:
            raise SystemExit(130) from None
        raise
    except BaseException as err:
        if isinstance(err, SystemExit) and not err.code:
            raise
        if not failures.first():
            raise SystemExit(1) from None  # another process failed first and shows why
        if _peer_lost(err):
            raise UserError(f"process {me.rank} of {me.world} lost contact with the others (one of them stopped or "
                            f"crashed): {str(err).splitlines()[0][:300]}") from None
        raise
    else:  # no barrier: rank 0 may still evaluate or sample on its own, without collectives
        dist.destroy_process_group()


def _job_store(rank: int, world: int) -> dist.Store:
    """The job's key-value store (torchrun's own, which outlives the workers; or rank 0's when started
    without torchrun), its keys prefixed with the restart attempt: torchrun keeps one store across
    restarts, and a restarted process group would otherwise read the addresses that the processes it
    replaces published."""
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size=world,
                          is_master=not agent and rank == 0, timeout=default_pg_timeout, multi_tenant=True)
    return dist.PrefixStore(f"specc/attempt-{restart_count()}", store)


class _FailureBoard:
    """Which process failed first, kept in the job's store."""

    def __init__(self, me: Ranks, store: dist.Store):
        self.me, self.store = me, store

    def first(self) -> bool:
        try:
            return int(self.store.add("failed", 1)) == 1
        except RuntimeError:  # the store is gone with the process that hosted it: that one failed first
            return not self.me.main


def _peer_lost(err: BaseException) -> bool:
    text = str(err)
    return isinstance(err, (RuntimeError, dist.DistError)) and any(s in text for s in _PEER_LOST)


def wait_for_leader() -> None:
    """Start of work that fills a machine-local cache (tokenizer training, token stores) and reads
    the spec: one process per machine (local rank 0) does it first, the others wait here until it
    calls `release_others`, then find the cache written. If the leader fails instead (a spec or data
    error), the others' wait breaks and `session` ends them quietly: the error is shown once."""
    me = ranks()
    if me.world > 1 and me.local_rank != 0:
        dist.barrier()


def release_others() -> None:
    """End of the leader's head start (see `wait_for_leader`)."""
    me = ranks()
    if me.world > 1 and me.local_rank == 0:
        dist.barrier()


@dataclass(frozen=True)
class BatchSplit:
    """One process's part of each optimizer step: `accum` micro-batches of `micro` samples.

    A step consumes `global_batch` consecutive samples from the data position; process r
    takes the `share` of them starting at `r * share`, micro-batch m at `m * micro` within it.
    """

    global_batch: int
    micro: int
    accum: int
    rank: int = 0

    @property
    def share(self) -> int:
        return self.micro * self.accum

    def first(self, position: int, m: int) -> int:
        """Sample index of micro-batch `m` of this process in the step starting at `position`."""
        return position + self.rank * self.share + m * self.micro


def split_batch(batch_size: int, grad_accum: int, me: Ranks, where: str = "[train]") -> BatchSplit:
    """The per-process micro-batch and accumulation of a declared global batch.

    The global batch of one step is ``batch_size × grad_accum`` samples, whatever the number of
    processes; each process gets an equal share, run in as few micro-batches of at most
    `batch_size` samples as divide it evenly. On one process that is `grad_accum` micro-batches
    of `batch_size`, as declared."""
    total = batch_size * grad_accum
    if total % me.world:
        multiple = -(-total // me.world) * me.world
        raise UserError(f"{where} batch_size × grad_accum = {batch_size} × {grad_accum} = {total} samples per step "
                        f"(the global batch) cannot be split evenly among {me.world} processes; make it a multiple "
                        f"of {me.world} (e.g. {multiple}), or run on a number of processes that divides {total}")
    share = total // me.world
    accum = next(k for k in range(1, share + 1) if share % k == 0 and share // k <= batch_size)
    return BatchSplit(total, share // accum, accum, me.rank)


def sum_over_ranks(sums: LossSums) -> LossSums:
    """Loss totals and counts summed over all processes (exact: no averages of averages)."""
    me = ranks()
    if me.world <= 1:
        return sums
    parts: list[Any] = [None] * me.world
    dist.all_gather_object(parts, (sums.sums, sums.counts))
    total = LossSums()
    for part_sums, part_counts in parts:  # in rank order, so every process adds in the same order
        total.merge(LossSums(part_sums, part_counts))
    return total


def sum_ints(value: int) -> int:
    """`value` summed over all processes."""
    if ranks().world <= 1:
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(t)
    return int(t.item())


def any_rank(flag: bool) -> bool:
    """Whether `flag` is set on any process (e.g. a Ctrl-C, which must stop every process at the same step)."""
    if ranks().world <= 1:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_rank0(value: T) -> T:
    """Rank 0's `value` on every process (decisions that must not drift apart)."""
    if ranks().world <= 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_rank0(value: T) -> list[T] | None:
    """Every process's `value`, in rank order, on rank 0 (None elsewhere)."""
    me = ranks()
    if me.world <= 1:
        return [value]
    parts: list[Any] = [None] * me.world
    dist.all_gather_object(parts, value)
    return parts if me.main else None


def resume_after_restart(run_dir: Path, say: Callable[[str], None]) -> str | None:
    """After torchrun restarted the processes (`--max-restarts`), the run continues from its last
    complete checkpoint (`run_dir`, to resume), or starts again if it wrote none (None)."""
    latest = checkpoint.latest(run_dir) if restart_count() else None
    if latest is None:
        return None
    say(f"restart {restart_count()}: continuing {run_dir} from {latest.name}")
    return str(run_dir)


def describe(parallel: str, say: Callable[[str], None]) -> None:
    """A line saying how many processes train, and how."""
    me = ranks()
    if joined():
        share = f"; each takes 1/{me.world} of every batch" if me.world > 1 else ""
        say(f"distributed: {me.world} process{'es' * (me.world > 1)} ({parallel}, {dist.get_backend()}){share}")


def on_rank0(fn: Callable[[], T]) -> T:
    """`fn()` run by rank 0 alone (e.g. writing a new run folder), its result given to every process."""
    me = ranks()
    if me.world <= 1:
        return fn()
    box: list[Any] = [fn() if me.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]


def silent(_: str) -> None:
    """A `say` for processes other than rank 0."""


def say_on_main(say: Any) -> Any:
    """`say` on rank 0, `silent` on the others."""
    return say if ranks().main else silent


def note(text: str) -> None:
    """A line on stderr from rank 0 only."""
    if ranks().main:
        print(text, file=sys.stderr)
