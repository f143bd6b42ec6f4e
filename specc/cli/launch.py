"""Several processes: `specc train SPEC --nproc N` starts torchrun for you.

specc has no launcher of its own: `--nproc N` runs PyTorch's (``torch.distributed.run``,
the code behind the `torchrun` command) in this process, as
``torchrun --standalone --nproc-per-node N [--max-restarts K] -m specc VERB ARGS``,
and each process it starts joins the job in `specc.runtime.distributed.session`. A failed
process shows its own error; this launcher only adds a line when a process died
without a word (killed by a signal), and exits with the failure's status.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from typing import Sequence

from specc.cli.common import UserError, positive_int


def add_launch_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("several processes (torchrun)")
    g.add_argument("--nproc", type=positive_int, metavar="N",
                   help="run on N processes of this machine: starts `torchrun --standalone --nproc-per-node N` for you "
                        "(DDP; FSDP2 with [train] parallel = \"fsdp\"); on several machines, run torchrun yourself")
    g.add_argument("--max-restarts", type=int, default=0, metavar="K",
                   help="with --nproc: when a process fails, restart all of them up to K times; the run continues "
                        "from its last complete checkpoint")


def check_launch_args(args: argparse.Namespace) -> None:
    if args.max_restarts < 0:
        raise UserError(f"--max-restarts must be 0 or more, got {args.max_restarts}")
    if args.max_restarts and not args.nproc:
        raise UserError("--max-restarts applies with --nproc (under torchrun, give torchrun --max-restarts)")
    if args.nproc and "WORLD_SIZE" in os.environ:
        raise UserError("--nproc starts torchrun; this process already runs under torchrun, so leave --nproc out")


def launch(verb: str, worker_args: Sequence[str], nproc: int, max_restarts: int) -> int:
    """Run `specc VERB WORKER_ARGS` on `nproc` local processes under torchrun; the exit status of the job."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    for name in list(logging.root.manager.loggerDict):  # torchrun's progress notes; a failure is shown once, below
        if name.startswith(("torch.distributed.run", "torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    # Processes share the machine's cores (torchrun would otherwise set 1 thread each, and say so).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    torchrun = ["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts),
                "-m", "specc", verb, *worker_args]
    try:
        run(get_args_parser().parse_args(torchrun))
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        if failure.exitcode < 0:  # died without a word: say how
            name = signal.Signals(-failure.exitcode).name
            restarts = f" (after {max_restarts} restart{'s' * (max_restarts != 1)})" if max_restarts else ""
            raise UserError(f"process {rank} of {nproc} was killed by {name}{restarts}") from None
        return failure.exitcode or 1
    except SignalException as err:  # torchrun passed the signal on to every process and waited for them
        return 128 + int(err.sigval)  # rank 0 has said where the run stopped (130 after Ctrl-C)
    return 0


def worker_args(args: argparse.Namespace, positional: Sequence[str], flags: Sequence[str],
                repeated: Sequence[str], switches: Sequence[str]) -> list[str]:
    """The command line of each process: this one's arguments without the launch options."""
    out = [str(getattr(args, name)) for name in positional]
    for name in flags:
        value = getattr(args, name)
        if value is not None:
            out += [_flag(name), str(value)]
    for name in repeated:
        for value in getattr(args, name):
            out += [_flag(name), str(value)]
    out += [_flag(name) for name in switches if getattr(args, name)]
    return out


_FLAGS = {"sets": "--set", "search_paths": "--search-path", "source": "--from"}


def _flag(dest: str) -> str:
    return _FLAGS.get(dest, "--" + dest.replace("_", "-"))
