"""One process of the allocator lever, with glibc's default malloc or `runtime.allocator`'s settings.

`python -m benchmarks.alloc_child default|tuned [--tiny] [--reps N]` times, interleaved in this
process, the causal-LM training step and the inference forward of `transformers` (sdpa) and specc
at the small shape, and prints one JSON line: per benchmark and variant, the median seconds and the
minor page faults per call. malloc settings are process-wide, so comparing them takes processes.
"""

from __future__ import annotations

import json
import sys

from runtime.allocator import tune_malloc


def main() -> None:
    mode, tiny = sys.argv[1], "--tiny" in sys.argv
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else (1 if tiny else 5)
    tuned = tune_malloc() if mode == "tuned" else False
    import torch

    from benchmarks.data import Source
    from benchmarks.harness import interleave
    from benchmarks.infer import forward_variants
    from benchmarks.models import SMALL, TINY, build
    from benchmarks.train import variants

    shape = TINY if tiny else SMALL
    trio = build("gpt", shape, attns=("sdpa",))
    source = Source(("causal_lm",), shape.vocab, shape.seq)
    steps = {k: v for k, v in variants("gpt-clm", trio, source.objectives, source.batch(0, shape.batch), False).items()
             if k in ("transformers sdpa", "specc")}
    for step in steps.values():
        step.model.train()
    train = interleave(steps, reps, warmup=1)
    forwards, _ = forward_variants("gpt-clm", shape, "cpu")
    with torch.no_grad():
        forward = interleave({k: v for k, v in forwards.items() if k in ("transformers sdpa", "specc")}, reps, warmup=1)
    out = {"mode": mode, "tuned": tuned, "threads": torch.get_num_threads(),
           "train": {k: {"s": t.median, "faults": t.faults} for k, t in train.items()},
           "forward": {k: {"s": t.median, "faults": t.faults} for k, t in forward.items()}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
