"""One process of the allocator lever: one library, with glibc's default malloc or `specc.runtime.train.allocator`'s.

`python -m benchmarks.alloc_child default|tuned specc|transformers|hand-written [--tiny] [--reps N]` times the
causal-LM training step, GPT's inference forward and BERT's (MLM logits) at the small shape and prints
one JSON line: per benchmark, the median seconds and the minor page faults per call. One library per process, because
malloc settings are process-wide and one library's allocations change how glibc serves the other's
(its dynamic mmap threshold rises after large frees).
"""

from __future__ import annotations

import json
import sys

from specc.runtime.train.allocator import tune_malloc

BENCHES = ("gpt train", "gpt forward", "bert forward")  # what each child times, in the order the tables show
NAMES = {"specc": "specc", "transformers": "transformers sdpa", "hand-written": "hand-written"}


def main() -> None:
    mode, library, tiny = sys.argv[1], sys.argv[2], "--tiny" in sys.argv
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else (1 if tiny else 5)
    tuned = tune_malloc() if mode == "tuned" else False
    import torch

    from benchmarks.data import Source
    from benchmarks.harness import interleave
    from benchmarks.infer import forward_fns, forward_variants
    from benchmarks.models import SMALL, TINY, build
    from benchmarks.train import variants

    shape, name = (TINY if tiny else SMALL), NAMES[library]
    trio = build("gpt", shape, attns=("sdpa",))
    source = Source(("causal_lm",), shape.vocab, shape.seq)
    batch = source.batch(0, shape.batch)
    step = variants("gpt-clm", trio, source.objectives, batch, False)[name]
    step.model.train()
    train = interleave({name: step}, reps, warmup=1)[name]
    forward = forward_fns("gpt", trio, batch)[name]
    bert_forward = forward_variants("bert-mlm", shape, "cpu", attns=("sdpa",))[0][name]
    with torch.no_grad():
        inference = interleave({name: forward}, reps, warmup=1)[name]
        bert_inference = interleave({name: bert_forward}, reps, warmup=1)[name]
    print(json.dumps({"mode": mode, "library": library, "tuned": tuned, "threads": torch.get_num_threads(),
                      "gpt train": {"s": train.median, "faults": train.faults},
                      "gpt forward": {"s": inference.median, "faults": inference.faults},
                      "bert forward": {"s": bert_inference.median, "faults": bert_inference.faults}}))


if __name__ == "__main__":
    main()
