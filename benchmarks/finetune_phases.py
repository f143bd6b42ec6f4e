"""Where a `specc finetune` run spends its time, phase by phase (a benchmark, not a test).

    OMP_NUM_THREADS=1 python -m benchmarks.finetune_phases specs/bert-tiny-sentiment.toml --from RUN \
        --set tasks.sentiment.train.steps=20 --out /tmp/run

(As a module: run as a script, benchmarks/profile.py would shadow the standard library's.)

Phases: `encode` (every call of the task runner's encode, with the records it encoded), `train` (the trainer's
steps, without evaluations), `eval` (the trainer's periodic evaluations), `load` (from the end of training to the
first final evaluation: choosing and loading the scored weights), `final validation` / `final test` (the end
report), `total` (the whole call). One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--from", dest="source")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)

    from specc.runtime.tasks import TASKS
    from specc.runtime.train import finetune as ft
    from specc.runtime.train.trainer import Trainer

    times: dict[str, float] = {"encode": 0.0}
    counts = {"encode_calls": 0, "records_encoded": 0}
    marks: dict[str, float] = {}

    def timed_encode(fn: Any) -> Any:
        def wrapper(self: Any, records: Any, gold: bool) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(self, records, gold)
            finally:
                times["encode"] += time.perf_counter() - t0
                counts["encode_calls"] += 1
                counts["records_encoded"] += len(records)
        return wrapper

    for kind in TASKS.values():
        if "encode" in vars(kind.runner):
            kind.runner.encode = timed_encode(kind.runner.encode)  # type: ignore[method-assign]
        for base in kind.runner.__mro__[1:]:  # a shared encode (classification and regression)
            if "encode" in vars(base) and not getattr(vars(base)["encode"], "__isabstractmethod__", False) \
                    and not getattr(vars(base)["encode"], "_timed", False):
                base.encode = timed_encode(vars(base)["encode"])  # type: ignore[attr-defined]
                base.encode._timed = True  # type: ignore[attr-defined]

    run = Trainer.run

    def timed_run(self: Trainer) -> Any:
        t0 = time.perf_counter()
        result = run(self)
        marks["train_end"] = time.perf_counter()
        times["train"] = marks["train_end"] - t0 - result.eval_seconds
        times["eval"] = result.eval_seconds
        return result

    Trainer.run = timed_run  # type: ignore[method-assign]
    evaluate_records = ft.evaluate_records

    def timed_eval(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        if "load" not in times:
            times["load"] = t0 - marks["train_end"]
        out = evaluate_records(*a, **k)
        times[f"final {out.split}"] = time.perf_counter() - t0
        return out

    ft.evaluate_records = timed_eval  # type: ignore[assignment]
    t0 = time.perf_counter()
    outcome = ft.finetune(args.spec, args.source, args.out, None, args.sets, quiet=True, say=lambda _: None)
    times["total"] = time.perf_counter() - t0
    scores = {e.split: e.metrics for e in outcome.evaluations}
    print(json.dumps({"spec": Path(args.spec).name, "seconds": {k: round(v, 3) for k, v in times.items()}, **counts,
                      "scores": scores}))


if __name__ == "__main__":
    main()
