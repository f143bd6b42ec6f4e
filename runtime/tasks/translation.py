"""Translation (any sequence-to-sequence task) with an encoder-decoder.

Training is teacher forcing: the decoder reads ``[start] y`` and learns to
predict ``y [end]`` (T5's convention: the pad token starts the target).
Evaluation and prediction decode with batched beam search (declared width and
length penalty) and score with sacrebleu's BLEU and chrF, whose signatures
are reported. The trivial baseline copies the source.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from pydantic import Field

from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from runtime.beam import Beam, beam_search
from runtime.labelled import Record
from runtime.metrics import sacrebleu_score
from runtime.objectives import Batch, LossSums
from runtime.objectives.base import attention_nodes, cross_entropy_sum
from runtime.tasks.base import Feature, TaskData, TaskParams, TaskRunner, TaskType, head_shape, needs_inputs, register


class PairFields(TaskData):
    source: str = "src"
    target: str = "tgt"


class TranslationParams(TaskParams):
    data: PairFields
    max_target_len: int = Field(default=128, gt=1)
    beam: int = Field(default=4, gt=0, le=64)
    length_penalty: float = Field(default=1.0, ge=0.0)
    max_new_tokens: int = Field(default=64, gt=0)
    prefix: str = ""  # prepended to every source, e.g. "translate English to German: "


class TranslationRunner(TaskRunner):
    kind = "text"
    default_metrics = ("bleu", "chrf")
    inputs = ("src", "tgt")
    baseline_name = "copy the source"

    @classmethod
    def check(cls, params: Any, graph: LayerGraph, at: Callable[[str], Span | None]) -> list[Diagnostic]:
        out = needs_inputs("translation", cls.inputs, graph, at("type"))
        if not any(a.cross for _, a in attention_nodes(graph)):
            out.append(Diagnostic("E075", "translation needs an encoder-decoder, but the model has no cross-attention", at("type"),
                                  "start from an encoder-decoder spec such as t5-tiny.toml"))
        shape = head_shape(graph, params.head)
        if shape is not None and len(shape) != 3:
            out.append(Diagnostic("E072", f"translation reads vocabulary logits per target token, but head "
                                  f"'{params.head}' has shape {list(shape)}", at("head"), "read the decoder's lm_head output"))
        if params.head != "logits":
            out.append(Diagnostic("E076", "translation decodes with the model's 'logits' output; set head = \"logits\"", at("head")))
        return out

    def _source(self, record: Record) -> list[int]:
        text = self.params.prefix + record.get(self.params.data.source, str)
        return self.tok.encode(text)[: self.params.max_len - 1] + [self.specials.eos]

    def encode(self, records: Sequence[Record], gold: bool) -> list[Feature]:
        s = self.specials
        features = []
        for i, record in enumerate(records):
            src = self._source(record)
            if not gold:
                features.append(Feature(i, {"src": src}))
                continue
            y = self.tok.encode(record.get(self.params.data.target, str))[: self.params.max_target_len - 1] + [s.eos]
            features.append(Feature(i, {"src": src, "tgt": [s.pad] + y[:-1]}, y))
        return features

    def targets(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        width = max(len(f.target) for f in features)
        return {"labels": torch.tensor([f.target + [-100] * (width - len(f.target)) for f in features], dtype=torch.long)}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        return cross_entropy_sum(outputs[self.params.head], batch.targets["labels"], sums, "lm")

    def predict(self, model: torch.nn.Module, records: Sequence[Record], features: Sequence[Feature],
                device: torch.device, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        p, s = self.params, self.specials
        beam = Beam(p.beam, p.length_penalty, p.max_new_tokens)
        out: list[dict[str, Any]] = []
        size = max(1, p.eval_batch_size // p.beam)
        for first in range(0, len(features), size):
            chunk = features[first : first + size]
            found = beam_search(model, [f.inputs["src"] for f in chunk], s.pad, s.eos, s.pad, beam, "src_mask" in self.graph.inputs)
            out += [{"translation": self.tok.decode(ids), "score": round(score, 4)} for ids, score in found]
            if progress is not None:
                progress(len(chunk))
        return out

    def value(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["translation"]

    def gold(self, record: Record) -> Any:
        return record.get(self.params.data.target, str)

    def baseline(self, train: Sequence[Record], records: Sequence[Record]) -> list[Any]:
        return [r.get(self.params.data.source, str) for r in records]

    def notes(self, predictions: Sequence[Any], golds: Sequence[Any]) -> dict[str, str]:
        return {f"{m}_signature": sacrebleu_score(m, predictions, golds)[1] for m in ("bleu", "chrf")
                if m in (self.params.metrics or self.default_metrics)}


register(TaskType("translation", TranslationParams, TranslationRunner,
                  "Sequence to sequence with an encoder-decoder: teacher forcing, beam search, BLEU/chrF (sacrebleu)."))
