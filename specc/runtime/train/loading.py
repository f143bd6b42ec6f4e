"""`specc.load_run`: a trained run, loaded from Python.

    run = specc.load_run("runs/gpt-tiny")            # the checkpoint `specc eval` reads (best, else latest)
    run = specc.load_run("runs/gpt-tiny", step=300)  # or a kept one (last=True: the latest)
    logits = run.model(tokens=torch.tensor([run.tokenizer.encode("The import")]))["logits"]

The model is built from the spec the checkpoint stores (not from the spec file,
which may have changed since) and its weights are loaded as the CLI loads them:
tied tensors filled once, an adapted (LoRA) run's frozen weights taken from the
base checkpoint it names. A fine-tuned run also brings its task (the declared
`[tasks.NAME]`, with the label set it was trained on).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from specc.compiler import SpecModel, compile_model
from specc.graph import LayerGraph
from specc.schema import ModelSpec
from specc.runtime.runs import checkpoint
from specc.runtime.errors import UserError
from specc.runtime.train.loop import pick_device
from specc.runtime.tasks import TASK_FILE, DeclaredTask
from specc.runtime.data.tokenizer import TextTokenizer
from specc.runtime.runs.transfer import load_run_weights


@dataclass(frozen=True)
class LoadedRun:
    """A run's checkpoint: its model (in eval mode), tokenizer, spec and graph, and its task if fine-tuned."""

    model: SpecModel
    tokenizer: TextTokenizer
    spec: ModelSpec
    graph: LayerGraph  # of the model as built: a fine-tuned run's is the part its task's head reads
    task: DeclaredTask | None  # None for a pretraining run
    labels: list[str] | None  # a fine-tuned classifier's or tagger's labels, in the head's order
    checkpoint: Path
    step: int

    def describe(self) -> str:
        """"checkpoint: FOLDER (step N)", as eval, generate and predict print it."""
        return checkpoint.describe(self.checkpoint)


def load_run(path: str | os.PathLike[str], step: int | None = None, last: bool = False, device: str = "cpu"
             ) -> LoadedRun:
    """A run folder's checkpoint of `step`, or the one eval and predict read by default (its best evaluation's when
    the run kept it, else its latest; the latest with `last`); or a checkpoint folder itself."""
    run_dir = Path(path)
    if not run_dir.exists():
        raise UserError(f"run directory not found: {run_dir}")
    ckpt = checkpoint.chosen(run_dir, step, last)
    state = checkpoint.load_state(ckpt)
    if (ckpt / TASK_FILE).exists():
        from specc.runtime.train.finetune import load_task_run

        run = load_task_run(ckpt, device)
        assert isinstance(run.model, SpecModel)
        labels = run.runner.labels
        return LoadedRun(run.model, run.runner.tok, run.setup.spec, run.setup.graph, run.setup.task,
                         list(labels) if labels is not None else None, ckpt, state.step)
    from specc.runtime.train.session import plan_from_checkpoint

    plan = plan_from_checkpoint(ckpt)
    model = compile_model(plan.graph, pick_device(device), init=False)
    load_run_weights(ckpt, model, plan.graph)
    model.eval()
    return LoadedRun(model, TextTokenizer.load(ckpt / "tokenizer.json"), plan.spec, plan.graph, None, None, ckpt,
                     state.step)
