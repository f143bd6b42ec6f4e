"""Objectives: a registry, and the weighted set a spec declares under [objective]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from specc.lazy import lazy_import
from specc.diagnostics import Collector
from specc.graph import LayerGraph
from specc.schema import ModelSpec
# Every objective module registers on import; a missing one is an ImportError here, never a skipped objective.
from specc.runtime.objectives import causal_lm, denoising, mlm, nsp, span_corruption  # noqa: F401  (registration)
from specc.runtime.batch import Batch, LossSums, is_loss  # re-exported: part of the objective interface
from specc.runtime.objectives.base import OBJECTIVES, ObjectiveRecord
from specc.runtime.objectives.needs import missing_from_graph
from specc.runtime.section import validate_section
from specc.runtime.data.tokenizer import Specials

if TYPE_CHECKING:
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")

# A module left off the import line above fails here; vocab_ce is the torch loss they import at the first loss.
OBJECTIVES.complete(__name__, __path__, helpers=("vocab_ce",))

__all__ = ["OBJECTIVES", "Batch", "LossSums", "ObjectiveSet", "is_loss", "resolve_objectives"]


@dataclass(frozen=True)
class ObjectiveSet:
    """The declared objectives with their weights, sharing one batch layout."""

    entries: tuple[tuple[ObjectiveRecord, Any], ...]
    layout: str
    unfed: frozenset[str] = frozenset()  # optional inputs the objectives make but the model does not declare

    @property
    def names(self) -> list[str]:
        return [r.name for r, _ in self.entries]

    @property
    def decoder_only(self) -> bool:
        return any(r.decoder_only for r, _ in self.entries)

    @property
    def seq2seq(self) -> bool:
        return any(r.seq2seq for r, _ in self.entries)

    @property
    def decoder_start(self) -> str:
        """Which special token ("pad" or "eos") a seq2seq decoder starts from."""
        return next((r.decoder_start for r, _ in self.entries if r.seq2seq), "pad")

    def prepare(self, batch: Batch, rng: np.random.Generator, specials: Specials, vocab: int) -> None:
        for record, params in self.entries:
            if record.prepare is not None:
                record.prepare(params, batch, rng, specials, vocab)
        for name in self.unfed:
            batch.inputs.pop(name, None)

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        total: torch.Tensor | None = None
        for record, params in self.entries:
            part = params.weight * record.loss(params, outputs, batch, sums)
            total = part if total is None else total + part
        assert total is not None
        return total


def resolve_objectives(spec: ModelSpec, graph: LayerGraph) -> ObjectiveSet:
    """Validate [objective] against the registry and the architecture; raises `SpecError`."""
    raw = spec.raw
    declared: Mapping[str, Any] = spec.sections.get("objective") or {}
    diags = Collector()
    if not declared:
        diags.error("E062", "the spec declares no [objective]", raw.file_span(),
                    f"add e.g. [objective.causal_lm]; known: {', '.join(sorted(OBJECTIVES))}")
        diags.raise_if_any()
    entries: list[tuple[ObjectiveRecord, Any]] = []
    for name, options in declared.items():
        span = raw.key_span(("objective", name))
        record = OBJECTIVES.get(name)
        if record is None:
            diags.error("E063", f"unknown objective '{name}'", span, OBJECTIVES.hint(name) or
                        f"known: {', '.join(sorted(OBJECTIVES))}")
            continue
        params = validate_section(record.params, options, spec, ("objective", name), diags)
        if params is None:
            continue
        diags.extend(missing_from_graph(record, graph, span, raw.file))
        diags.extend(record.check(params, graph, span))
        entries.append((record, params))
    layout = _layout(entries, raw, diags)
    diags.raise_if_any()
    unfed = frozenset(n for r, _ in entries for n in r.optional_inputs if n not in graph.inputs)
    return ObjectiveSet(tuple(entries), layout, unfed)




def _layout(entries: list[tuple[ObjectiveRecord, Any]], raw: Any, diags: Collector) -> str:
    if not entries:
        return ""
    layouts = {r.layout for r, _ in entries}
    for candidate in sorted(layouts):
        if all(r.layout == candidate or candidate in r.accepts for r, _ in entries):
            return candidate
    names = " + ".join(r.name for r, _ in entries)
    diags.error("E064", f"objectives {names} cannot share one batch layout", raw.key_span(("objective",)))
    return ""
