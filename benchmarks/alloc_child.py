"""One process of the allocator lever: specc's causal-LM step, with default or tuned malloc.

`python -m benchmarks.alloc_child default|tuned [--tiny]` prints one JSON line:
median seconds per step and minor page faults per step.
"""

from __future__ import annotations

import json
import sys

from runtime.allocator import tune_malloc


def main() -> None:
    mode, tiny = sys.argv[1], "--tiny" in sys.argv
    tuned = tune_malloc() if mode == "tuned" else False
    import torch

    from runtime.config import TrainConfig
    from runtime.optim import make_optimizer
    from specc.compiler import compile_model

    from benchmarks.data import Source
    from benchmarks.harness import interleave
    from benchmarks.models import SMALL, TINY, graph
    from benchmarks.train import Stepper, specc_loss

    shape = TINY if tiny else SMALL
    model = compile_model(graph("gpt", shape)).train()
    source = Source(("causal_lm",), shape.vocab, shape.seq)
    batch = source.batch(0, shape.batch)
    step = Stepper(model, specc_loss(model, source.objectives, batch), make_optimizer(model, TrainConfig()))
    t = interleave({"step": step}, 2 if tiny else 6, warmup=2)["step"]
    print(json.dumps({"mode": mode, "tuned": tuned, "step_s": t.median, "faults": t.faults, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
