"""Task verbs: finetune, predict (a fine-tuned run's `eval` lives with the other `eval` in run.py)."""

from __future__ import annotations

import argparse
from typing import Any

from specc.cli.common import add_checkpoint_args
from specc.cli.launch import add_launch_args, check_launch_args, launch, worker_args


def register(sub: Any) -> None:
    p = sub.add_parser("finetune", help="fine-tune a spec's declared task from a pretrained run")
    p.add_argument("spec")
    p.add_argument("--from", dest="source", metavar="RUN", help="pretrained run (default: the task's `from`; none: random init)")
    p.add_argument("--out", help="run directory (default runs/<spec name>)")
    p.add_argument("--task", metavar="NAME", help="which of the spec's [tasks.NAME] to fine-tune (needed when it declares several)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the fine-tuning run in RUN_DIR")
    p.add_argument("--random-init", action="store_true",
                   help="take only the tokenizer from --from and start the weights afresh (to measure what pretraining gives)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--search-path", dest="search_paths", action="append", default=[], metavar="DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_launch_args(p)
    p.set_defaults(handler=cmd_finetune)

    p = sub.add_parser("predict", help="predictions of a fine-tuned run for a JSONL or plain-text file, as JSONL")
    p.add_argument("run")
    p.add_argument("--input", required=True, metavar="FILE", help="JSONL with the task's input fields, or text (one per line)")
    p.add_argument("--output", metavar="FILE", help="JSONL to write (default: standard output)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_checkpoint_args(p)
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("merge", help="fold a LoRA fine-tuning run's adapters into its base weights: a self-contained run")
    p.add_argument("run")
    p.add_argument("--out", required=True, metavar="DIR", help="the merged run's directory (must not exist)")
    add_checkpoint_args(p)
    p.set_defaults(handler=cmd_merge)


def cmd_finetune(args: argparse.Namespace) -> int:
    from specc.runtime import distributed
    from specc.runtime.train.finetune import finetune

    check_launch_args(args)
    if args.nproc:
        return launch("finetune", worker_args(args, ["spec"], ["source", "out", "task", "resume"], ["sets", "search_paths"],
                                              ["random_init", "quiet"]), args.nproc, args.max_restarts)
    with distributed.session():
        finetune(args.spec, args.source, args.out, args.task, args.sets, args.search_paths, args.resume, args.random_init,
                 quiet=args.quiet)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from specc.runtime.train.merge import merge_run

    ckpt, layers = merge_run(args.run, args.out, args.step, args.last)
    print(f"merged {layers} LoRA layers into the base weights → {ckpt}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from specc.runtime.train.finetune import predict

    predict(args.run, args.input, args.output, quiet=args.quiet, step=args.step, last=args.last)
    return 0
