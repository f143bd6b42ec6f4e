"""Runtime verbs: train, eval, generate."""

from __future__ import annotations

import argparse
from typing import Any

from specc.cli.common import UserError, add_checkpoint_args
from specc.cli.launch import add_launch_args, check_launch_args, launch, worker_args


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="pretrain a spec's model with its declared objectives and data")
    p.add_argument("spec")
    p.add_argument("--out", help="run directory (default runs/<spec name>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last complete checkpoint")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--search-path", dest="search_paths", action="append", default=[], metavar="DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--warm-start", metavar="CHECKPOINT", help="start from a checkpoint of another architecture: load "
                   "what fits (see `specc diff`), then train into --out")
    p.add_argument("--map", dest="mapping", action="append", default=[], metavar="NEW=OLD",
                   help="with --warm-start: fill layers from other layers, e.g. h.6:12=h.0:6 (repeatable)")
    add_launch_args(p)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("eval", help="held-out loss and perplexity of a run's latest checkpoint; "
                                    "a fine-tuned run's task metrics")
    p.add_argument("run")
    p.add_argument("--data", metavar="FILE", help="fine-tuned runs: score this labelled file (JSONL, CSV/TSV, SQuAD JSON)")
    p.add_argument("--split", choices=["validation", "test", "train"], default="validation",
                   help="fine-tuned runs without --data: which of the task's splits to score")
    p.add_argument("--json", action="store_true")
    add_checkpoint_args(p)
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("generate", help="sample text from a trained causal LM or encoder-decoder")
    p.add_argument("run")
    p.add_argument("--prompt", default="")
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.add_argument("--temperature", type=float, default=0.8, help="0 for greedy decoding")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_generate)


def cmd_train(args: argparse.Namespace) -> int:
    from specc.runtime import distributed
    from specc.runtime.train.jobs import train

    check_launch_args(args)
    if args.warm_start and (args.resume or not args.out):
        raise UserError("--warm-start trains into a new run folder: give --out DIR, and no --resume")
    if args.mapping and not args.warm_start:
        raise UserError("--map applies only with --warm-start")
    if args.nproc:
        return launch("train", worker_args(args, ["spec"], ["out", "resume", "warm_start"], ["sets", "search_paths", "mapping"],
                                           ["quiet"]), args.nproc, args.max_restarts)
    with distributed.session():
        resume = args.resume
        if args.warm_start:
            from specc.runtime.train.warm_start import warm_start

            resume = args.out
            if not distributed.restart_count():  # a restarted job continues the run the first attempt began
                report = distributed.on_rank0(lambda: warm_start(args.warm_start, args.spec, args.out, args.sets,
                                                                 args.search_paths, args.mapping).report())
                distributed.say_on_main(print)(report)
        train(args.spec, args.out, resume, args.sets, args.search_paths, quiet=args.quiet)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from specc.runtime.train.finetune import evaluate_run as evaluate_task, is_task_run
    from specc.runtime.train.jobs import evaluate_run

    if is_task_run(args.run):
        evaluate_task(args.run, args.data, args.split, as_json=args.json, step=args.step, last=args.last)
    elif args.data is not None:
        raise UserError(f"--data scores a fine-tuned run's task; {args.run} is a pretraining run")
    else:
        evaluate_run(args.run, as_json=args.json, step=args.step, last=args.last)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from specc.runtime.inference.generate import Sampling
    from specc.runtime.train.jobs import generate

    check_sampling(args)
    generate(args.run, args.prompt, Sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed))
    return 0


MIN_TEMPERATURE = 1e-4  # below it logits / temperature overflow float32: greedy decoding in all but name


def check_sampling(args: argparse.Namespace) -> None:
    """The domains of generate's arguments, each refused with what it takes (a NaN, a negative or a 23-digit
    value used to be a traceback deep in sampling, or silently meaningless)."""
    t = args.temperature
    problems = [
        ("--max-new-tokens", args.max_new_tokens, 0 <= args.max_new_tokens <= 1_000_000, "from 0 to 1,000,000"),
        ("--temperature", t, t == 0 or MIN_TEMPERATURE <= t <= 1e4,
         f"0 (greedy) or a number from {MIN_TEMPERATURE:g} to 10,000"),  # NaN fails every comparison
        ("--top-k", args.top_k, args.top_k >= 0, "0 (off) or a positive number of tokens"),
        ("--top-p", args.top_p, 0 < args.top_p <= 1, "a probability above 0, at most 1 (1 is off)"),
        ("--seed", args.seed, 0 <= args.seed < 2**63, "a whole number from 0 to 2**63 - 1"),
    ]
    for flag, value, ok, domain in problems:
        if not ok:
            raise UserError(f"{flag} {value}: must be {domain}")
    try:
        args.prompt.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 arrive from the command line as lone surrogates
        raise UserError("--prompt is not valid UTF-8 text") from None
