"""``--set`` overrides that cannot affect the run they are given to: errors naming the key that would.

A fine-tuning run trains with its task's ``[tasks.NAME.train]``, reads the
task's ``[tasks.NAME.data]`` and no pretraining objective, takes its tokenizer
from the pretrained run, and compiles only what the task's head reads; a
pretraining run runs no task. An override of anything a run ignores would
change nothing, silently, so it is refused before any work (E087), with the
key that does what was asked where there is one.
"""

from __future__ import annotations

from typing import Sequence

from specc.diagnostics import Diagnostic, Origin, Span, SpecError
from specc.frontend import set_path
from specc.graph import LayerGraph


def _refuse(item: str, why: str, hint: str | None) -> Diagnostic:
    return Diagnostic("E087", f"this override cannot affect the run: {why}", Span(f"--set {item}", origin=Origin.CLI), hint)


def _value(item: str) -> str:
    return item.partition("=")[2]


def check_finetune_sets(sets: Sequence[str], task: str, graph: LayerGraph, trains_tokenizer: bool,
                        from_given: bool) -> None:
    """Refuse overrides a fine-tuning run of `task` ignores. `graph` is what the run compiles (the head's
    subgraph); `trains_tokenizer`: the run builds its tokenizer from [tokenizer] and [data] (no pretrained
    run to take it from; a resumed run counts as one, so the command that started it can be repeated);
    `from_given`: --from names the pretrained run, so the task's `from` is not read."""
    found = []
    for item in sets:
        why = _finetune_reason(set_path(item), _value(item), task, graph, trains_tokenizer, from_given)
        if why is not None:
            found.append(_refuse(item, *why))
    if found:
        raise SpecError(found)


def _finetune_reason(path: tuple[str, ...], value: str, task: str, graph: LayerGraph, trains_tokenizer: bool,
                     from_given: bool) -> tuple[str, str | None] | None:
    own = f"tasks.{task}"
    rest = ".".join(path[1:])
    head, *_ = path
    if head == "train":
        key = f"{own}.train" + (f".{rest}" if rest else "")
        return f"the task '{task}' trains with {key}", f"--set {key}={value}"
    if head == "objective":
        return (f"a fine-tuning run has no pretraining objective (the task '{task}' trains with its own loss)",
                "pretraining objectives are for `specc train`")
    if head == "data" and not trains_tokenizer:
        return (f"the task '{task}' reads its examples from {own}.data, and [data] only feeds a tokenizer trained "
                "from scratch; this run takes its tokenizer from the pretrained run", f"set the task's data with "
                f"--set {own}.data.KEY=VALUE (train, validation, test, field names)")
    if head == "tokenizer" and not trains_tokenizer:
        return "this run takes its tokenizer from the pretrained run; [tokenizer] applies only without one", None
    if head == "tasks" and len(path) > 1 and path[1] != task:
        return f"this run fine-tunes the task '{task}', not '{path[1]}'", f"pick that task with --task {path[1]}"
    if path[:3] == ("tasks", task, "from") and from_given:
        return f"--from RUN names the pretrained run; {own}.from is only the default when --from is not given", None
    if head == "model" and len(path) > 2 and path[1] == "nodes" and path[2] not in {g.name for g in graph.groups}:
        return f"node '{path[2]}' is not part of what the task '{task}' runs (its head does not read it)", None
    if path[:2] == ("model", "outputs") and len(path) > 2 and path[2] not in graph.outputs:
        return f"the task '{task}' reads only the output '{next(iter(graph.outputs))}'", None
    return None


def check_pretrain_sets(sets: Sequence[str]) -> None:
    """Refuse overrides of fine-tuning tasks on a pretraining run."""
    found = [_refuse(item, "pretraining runs no task; [tasks.NAME] is read by `specc finetune`", None)
             for item in sets if set_path(item)[0] == "tasks"]
    if found:
        raise SpecError(found)
