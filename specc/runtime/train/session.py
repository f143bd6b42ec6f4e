"""Everything a job needs, assembled from a spec file or from a checkpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from specc.canonical import canonical_json
from specc.diagnostics import Diagnostic, Span, SpecError
from specc.frontend import parse
from specc.graph import LayerGraph, build_graph
from specc.graph.queries import token_vocab
from specc.schema import ModelSpec, validate
from specc.runtime.budget import check_batch_memory
from specc.runtime.config import (RunConfig, check_checkpointing, check_held_out, check_lr_scale, check_positions,
                                   check_precision, check_vocab, load_run_config)
from specc.runtime.errors import UserError
from specc.runtime.objectives import ObjectiveSet, resolve_objectives

if TYPE_CHECKING:  # `specc check` plans a spec and never reads data, a tokenizer or a checkpoint: imported where used
    from specc.runtime.data.corpus import Corpus
    from specc.runtime.data.tokenizer import TextTokenizer


@dataclass
class Plan:
    """A validated spec with its graph, runtime config and objectives (no data touched yet)."""

    spec: ModelSpec
    graph: LayerGraph
    config: RunConfig
    objectives: ObjectiveSet
    base: Path  # folder that relative data paths are resolved against

    def corpus(self) -> Corpus:
        from specc.runtime.data.corpus import Corpus

        return Corpus(self.config.data, self.base)

    def spec_json(self) -> str:
        return canonical_json(self.spec)


def plan_from_spec(path: str | os.PathLike[str], sets: Sequence[str] = (), search_paths: Sequence[str] = ()) -> Plan:
    spec = validate(parse(path, sets, search_paths))
    return plan(spec, Path(path).resolve().parent)


def _at(spec: ModelSpec, *paths: tuple[str, ...]) -> Span:
    """Where a runtime check points: the first of `paths` written in the spec (its value, else its key), else the
    spec file itself. A value left at its default (or inherited) has no line here, but the mistake is still this
    spec's, and a diagnostic always names its file."""
    for path in paths:
        span = spec.raw.value_span(path) or spec.raw.key_span(path)
        if span is not None:
            return span
    return spec.raw.file_span()


def plan(spec: ModelSpec, base: Path, graph: LayerGraph | None = None) -> Plan:
    """Graph (built unless given), runtime config and objectives of a spec; every section's mistakes
    reported together."""
    graph = graph if graph is not None else build_graph(spec)
    found: list[Diagnostic] = []
    config = objectives = None
    try:
        config = load_run_config(spec)
        found += check_checkpointing(config.train, graph, _at(spec, ("train", "activation_checkpointing"), ("train",)))
        found += check_batch_memory(config.train, graph, _at(spec, ("train", "batch_size"), ("train", "seq_len"),
                                                             ("train",)))
        found += check_precision(config.train, _at(spec, ("train", "precision"), ("train",)))
        found += check_lr_scale(config.train, graph, _at(spec, ("train", "lr_scale"), ("train",)))
        found += check_positions(config.train, graph, _at(spec, ("train", "seq_len"), ("train",)))
        found += check_vocab(config.tokenizer, graph, _at(spec, ("tokenizer", "vocab_size"), ("params", "vocab")))
        found += check_held_out(config.data, _at(spec, ("data", "max_documents"), ("data",)))
    except SpecError as err:
        found += err.diagnostics
    try:
        # A spec that only declares fine-tuning tasks needs no pretraining objective.
        tasks_only = "tasks" in spec.sections and "objective" not in spec.sections
        objectives = ObjectiveSet((), "") if tasks_only else resolve_objectives(spec, graph)
    except SpecError as err:
        found += err.diagnostics
    if "tasks" in spec.sections:
        from specc.runtime.tasks import resolve_tasks

        try:
            resolve_tasks(spec, graph)
        except SpecError as err:
            found += err.diagnostics
    if found:
        raise SpecError(found)
    assert config is not None and objectives is not None
    return Plan(spec, graph, config, objectives, base)


def plan_from_checkpoint(ckpt: Path) -> Plan:
    """Rebuild the exact spec a checkpoint was trained with (its stored canonical spec)."""
    from specc.runtime.runs import checkpoint
    from specc.runtime.runs.lineage import stored_spec

    spec = stored_spec(ckpt)
    base = Path(checkpoint.load_state(ckpt).base or ckpt)
    try:
        return plan(spec, base if base.exists() else ckpt)
    except SpecError as err:
        raise UserError(f"{ckpt / 'spec.json'} is not a valid spec for this specc:\n{err.render()}") from None


def tokenizer_for(p: Plan, corpus: Corpus) -> TextTokenizer:
    from specc.runtime.data.tokenizer import build_tokenizer

    tok = build_tokenizer(p.config.tokenizer, corpus.documents("train"), corpus.fingerprint())
    _check_vocab(p, tok)
    return tok


def _check_vocab(p: Plan, tok: TextTokenizer) -> None:
    rows = token_vocab(p.graph)
    if rows is not None and tok.vocab_size > rows:
        raise SpecError([Diagnostic("E065", f"the tokenizer has {tok.vocab_size} tokens but the model's embedding holds "
                                    f"{rows}", p.spec.raw.key_span(("tokenizer",)) or p.spec.raw.file_span(),
                                    "set [tokenizer] vocab_size to at most the model's vocab")])


def load_run(run_dir: str | os.PathLike[str], step: int | None = None, last: bool = False
             ) -> tuple[Plan, Path, TextTokenizer]:
    """The plan, checkpoint path and tokenizer of a run directory's chosen checkpoint (`checkpoint.chosen`)."""
    from specc.runtime.data.tokenizer import TextTokenizer
    from specc.runtime.runs import checkpoint

    path = Path(run_dir)
    if not path.exists():
        raise UserError(f"run directory not found: {path}")
    ckpt = checkpoint.chosen(path, step, last)
    return plan_from_checkpoint(ckpt), ckpt, TextTokenizer.load(ckpt / "tokenizer.json")
