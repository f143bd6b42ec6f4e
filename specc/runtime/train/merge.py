"""`specc merge RUN`: an adapted (LoRA) fine-tuning run → a self-contained run of the plain architecture.

The run's adapters are folded into its base weights (W + B A · alpha / rank)
and the result is written as an ordinary fine-tuned run: a full
``model.safetensors``, the stored spec without its `[adapters]` section, and
the task's label set, so `eval`, `predict` and `export-hf` read it like any
other run and it no longer needs the base checkpoint. Its optimizer state is
empty: a merged run is for use, not for resuming.
"""

from __future__ import annotations

import json
from pathlib import Path

from specc.atomic import atomic_dir
from specc.compiler.adapt import merge
from specc.graph import build_graph
from specc.raw import RawSpec, SpanTable
from specc.runtime.runs import checkpoint, lineage
from specc.runtime.errors import UserError
from specc.runtime.train.finetune import TASK_FILE, load_task_run
from specc.schema import validate
from specc.canonical import runtime_hash


def merge_run(run_dir: str | Path, out: str | Path, step: int | None = None, last: bool = False) -> tuple[Path, int]:
    """Write the merged run to `out` (which must not exist); returns its checkpoint and how many layers merged."""
    target = Path(out)
    if target.exists():
        raise UserError(f"{target} already exists; choose another --out")
    run = load_task_run(run_dir, "cpu", step=step, last=last)
    if run.setup.graph.adapters is None:
        raise UserError(f"{run.ckpt} has no adapters to merge: it already holds every weight")
    layers = merge(run.model)
    data = json.loads((run.ckpt / "spec.json").read_text())
    data.pop("adapters", None)
    spec = validate(RawSpec(data, SpanTable(), str(run.ckpt / "spec.json"), {}))
    state = checkpoint.load_state(run.ckpt)
    base = state.base_ckpt
    state.base_ckpt = state.base_hash = ""
    state.runtime_hash = runtime_hash(spec)
    record = lineage.record(build_graph(spec), {"merged_from": str(run.ckpt.resolve()), "base": base})
    try:
        with atomic_dir(target) as tmp:  # the merged run appears whole, or not at all
            saved = checkpoint.save(tmp, state, run.model, {}, json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False),
                                    (run.ckpt / "tokenizer.json").read_text(), keep=1,
                                    extras={TASK_FILE: (run.ckpt / TASK_FILE).read_text(), lineage.FILE: lineage.dumps(record)})
    except OSError as err:
        raise UserError(f"cannot write {target}: {err.strerror or err}") from None
    return target / "checkpoints" / saved.name, layers
