"""Translation (any sequence-to-sequence task) with an encoder-decoder or a decoder-only model.

An encoder-decoder reads the source in its encoder; training is teacher
forcing: the decoder reads ``[start] y`` and learns to predict ``y [end]``
(T5's convention: the pad token starts the target). A decoder-only (causal)
model reads one sequence, ``prefix + source``, the separator, ``y [end]``, and
learns only the target's tokens: the prompt is given, never predicted.
Evaluation and prediction decode with batched beam search (declared width and
length penalty) and score with sacrebleu's BLEU and chrF, whose signatures are
reported. The trivial baseline copies the source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Sequence

from pydantic import Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span
from specc.graph import LayerGraph
from specc.graph.queries import attention_nodes
from specc.runtime.errors import UserError
from specc.runtime.tasks.metrics import sacrebleu_score
from specc.runtime.batch import Batch, LossSums
from specc.runtime.objectives.base import cross_entropy_sum
from specc.runtime.tasks.base import Feature, TaskData, TaskParams, TaskRunner, TaskType, head_shape, needs_inputs, register
from specc.runtime.data.tokenizer import TextTokenizer

if TYPE_CHECKING:  # Record: annotations only (its module imports every file-format reader)
    from specc.runtime.data.formats import Record
    import torch
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")

SEPARATOR = "\n"  # a decoder-only model's default text between the source and its translation


class PairFields(TaskData):
    source: str = Field(default="src", description="field of the source text (a dotted path reads into an object: "
                        "`translation.en`)")
    target: str = Field(default="tgt", description="field of its translation")

    def reads(self) -> tuple[str, ...]:
        return (self.source, self.target)


class TranslationParams(TaskParams):
    data: PairFields
    max_target_len: int = Field(default=128, gt=1, description="target tokens kept for training")
    beam: int = Field(default=4, gt=0, le=64, description="beam width of prediction (1: greedy)")
    length_penalty: float = Field(default=1.0, ge=0.0, description="beam scores divided by length ** this")
    max_new_tokens: int = Field(default=64, gt=0, description="longest predicted target")
    prefix: str = Field(default="", description="prepended to every source, e.g. \"translate English to German: \"")
    separator: str | None = Field(default=None, description="decoder-only: text between the source and the target "
                                  "(default: a newline)")


def architecture(graph: LayerGraph) -> str:
    """How the model generates: 'encoder-decoder' (a decoder attending to an encoder), 'decoder-only'
    (every attention causal); otherwise the name of a bidirectional attention node, or '' for none."""
    nodes = attention_nodes(graph)
    if any(a.cross for _, a in nodes):
        return "encoder-decoder"
    bidirectional = [name for name, a in nodes if not a.causal]
    if nodes and not bidirectional:
        return "decoder-only"
    return bidirectional[0] if bidirectional else ""


class TranslationRunner(TaskRunner):
    kind = "text"
    default_metrics = ("bleu", "chrf")
    inputs = ("src", "tgt")  # an encoder-decoder's; a decoder-only model reads "tokens"
    baseline_name = "copy the source"

    def __init__(self, name: str, params: Any, graph: LayerGraph, tok: TextTokenizer, labels: list[str] | None):
        super().__init__(name, params, graph, tok, labels)
        self.decoder_only = architecture(graph) == "decoder-only"
        self.prompt_input = "tokens" if self.decoder_only else "src"  # what a source is fed as
        self.separator = tok.encode(params.separator if params.separator is not None else SEPARATOR)
        if self.decoder_only and len(self.separator) >= params.max_len:
            raise UserError(f"task '{name}': the separator is {len(self.separator)} tokens, which leaves no room for "
                            f"the source in max_len {params.max_len}")

    @classmethod
    def check(cls, params: Any, graph: LayerGraph, at: Callable[[str], Span | None]) -> list[Diagnostic]:
        kind = architecture(graph)
        if kind == "encoder-decoder":
            out = needs_inputs("translation", cls.inputs, graph, at("type"))
            if params.separator is not None:
                out.append(Diagnostic("E082", "separator applies to a decoder-only model; an encoder-decoder reads the "
                                      "source in its encoder and the target in its decoder", at("separator"),
                                      "remove separator (prefix still applies)"))
        elif kind == "decoder-only":
            out = needs_inputs("translation", ("tokens",), graph, at("type"))
            limit = graph.max_positions()
            if limit is not None and params.max_len + params.max_target_len > limit:
                out.append(Diagnostic("E080", f"a decoder-only model reads the prompt and the target as one sequence, "
                                      f"but max_len {params.max_len} + max_target_len {params.max_target_len} exceeds "
                                      f"its {limit} positions", at("max_target_len"),
                                      f"keep the sum within {limit}"))
        else:
            why = (f"attention '{kind}' is bidirectional (an encoder reads, it cannot generate)" if kind
                   else "the model has no attention")
            out = [Diagnostic("E075", f"translation needs an encoder-decoder or a causal decoder-only model, but {why}",
                              at("type"), "start from an encoder-decoder such as t5-tiny.toml or a decoder-only model "
                              "such as gpt-tiny.toml")]
        shape = head_shape(graph, params.head)
        if shape is not None and len(shape) != 3:
            out.append(Diagnostic("E072", f"translation reads vocabulary logits per target token, but head "
                                  f"'{params.head}' has shape {list(shape)}", at("head"), "read the decoder's lm_head output"))
        if params.head != "logits":
            out.append(Diagnostic("E076", "translation decodes with the model's 'logits' output; set head = \"logits\"", at("head")))
        return out

    # -- data -----------------------------------------------------------------------
    def _source(self, record: Record) -> tuple[list[int], list[int] | None]:
        """An encoder-decoder's source ids (ending in the end token), or a decoder-only model's prompt
        (ending in the separator), within max_len; and the whole source's ids when they were read (`head_and_whole`)."""
        room = self.params.max_len - (len(self.separator) if self.decoder_only else 1)
        ids, whole = self.tok.head_and_whole(self.params.prefix + record.get(self.params.data.source, str), room)
        return ids + (self.separator if self.decoder_only else [self.specials.eos]), whole

    def _sizes(self, ids: list[int]) -> SideSizes:
        return SideSizes(len(ids), ids.count(self.specials.unk) if self.specials.unk is not None else 0)

    def encode(self, records: Sequence[Record], gold: bool) -> list[Feature]:
        s = self.specials
        features = []
        for i, record in enumerate(records):
            src, whole_src = self._source(record)  # kept as `meta`: what prediction reads, from a gold feature too
            if not gold:
                features.append(Feature(i, {self.prompt_input: src}, meta=src))
                continue
            y, whole_y = self.tok.head_and_whole(record.get(self.params.data.target, str), self.params.max_target_len - 1)
            y += [s.eos]
            # each side's untruncated size, for `describe`: the training split is tokenized here only
            sizes = tuple(None if whole is None else self._sizes(whole) for whole in (whole_src, whole_y))
            if self.decoder_only:  # one sequence; the loss skips the prompt (its last token predicts y[0])
                features.append(Feature(i, {"tokens": src + y[:-1]}, [-100] * (len(src) - 1) + y, src, sizes))
            else:
                features.append(Feature(i, {"src": src, "tgt": [s.pad] + y[:-1]}, y, src, sizes))
        return features

    def describe(self, records: Sequence[Record], features: Sequence[Feature] = ()) -> list[str]:
        """Pieces per word and unknown pieces of each side (a tokenizer trained on English pretraining text may
        cover a target language poorly), and how many sources and targets the declared lengths cut short.
        Read off the records' gold `features` where they hold it; only a record without them is tokenized here."""
        p = self.params
        known = {f.example: f.untruncated for f in features if f.untruncated is not None}
        # what each declared length holds besides the text: the end token, or a decoder-only prompt's separator
        sides = (("source", p.prefix, p.data.source, "max_len", len(self.separator) if self.decoder_only else 1),
                 ("target", "", p.data.target, "max_target_len", 1))
        lines = []
        for n, (side, prefix, field, key, extra) in enumerate(sides):
            sizes = [known[i][n] if i in known and known[i][n] is not None
                     else self._sizes(self.tok.encode(prefix + r.get(field, str))) for i, r in enumerate(records)]
            lines.append(_coverage(side, sizes, sum(len(r.get(field, str).split()) for r in records), key, getattr(p, key), extra))
        return lines

    def targets(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        width = max(len(f.target) for f in features)
        return {"labels": torch.tensor([f.target + [-100] * (width - len(f.target)) for f in features], dtype=torch.long)}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        return cross_entropy_sum(outputs[self.params.head], batch.targets["labels"], sums, "lm")

    # -- prediction ---------------------------------------------------------------------
    def predict(self, model: torch.nn.Module, records: Sequence[Record], features: Sequence[Feature],
                device: torch.device, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        from specc.runtime.inference.beam import Beam, Feed, beam_search  # torch: imported to predict, not to check

        p, s = self.params, self.specials
        beam = Beam(p.beam, p.length_penalty, p.max_new_tokens)
        # Batches of similar length: less padding (encoder-decoder), fewer prompt-reading steps (decoder-only);
        # every row decodes as it would alone, so the order changes nothing else.
        order = sorted(range(len(features)), key=lambda i: len(features[i].meta))
        found: dict[int, tuple[list[int], float]] = {}
        size = max(1, p.eval_batch_size // p.beam)
        for first in range(0, len(order), size):
            chunk = order[first : first + size]
            rows = [features[i].meta for i in chunk]
            if self.decoder_only:
                results = beam_search(model, rows, s.eos, s.pad, beam, Feed(positions=self.graph.max_positions()))
            else:
                feed = Feed.encoder_decoder(rows, s.pad, "src_mask" in self.graph.inputs)
                results = beam_search(model, [[s.pad]] * len(rows), s.eos, s.pad, beam, feed)
            for i, result in zip(chunk, results):
                found[i] = result
            if progress is not None:
                progress(len(chunk))
        return [{"translation": self.tok.decode(ids), "score": round(score, 4)} for ids, score in (found[i] for i in range(len(features)))]

    def value(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["translation"]

    def gold(self, record: Record) -> Any:
        return record.get(self.params.data.target, str)

    def baseline(self, train: Sequence[Record], records: Sequence[Record]) -> list[Any]:
        return [r.get(self.params.data.source, str) for r in records]

    def notes(self, predictions: Sequence[Any], golds: Sequence[Any]) -> dict[str, str]:
        return {f"{m}_signature": sacrebleu_score(m, predictions, golds)[1] for m in ("bleu", "chrf")
                if m in (self.params.metrics or self.default_metrics)}


class SideSizes(NamedTuple):
    """One side of a record (source or target) as the tokenizer reads it whole, before any cut."""

    tokens: int
    unknown: int


def _coverage(side: str, encoded: Sequence[SideSizes], words: int, key: str, length: int, extra: int) -> str:
    """One line: tokens per word, unknown tokens, and how many rows the declared `length` (of which `extra`
    tokens are not text) cuts short."""
    pieces = sum(z.tokens for z in encoded)
    unknown = sum(z.unknown for z in encoded)
    cut = sum(z.tokens > length - extra for z in encoded)
    longest = max((z.tokens for z in encoded), default=0)
    line = (f"{side}s: {pieces / max(words, 1):.2f} tokens per word, {unknown} unknown of {pieces:,} "
            f"({100 * unknown / max(pieces, 1):.2f} %), longest {longest} tokens; ")
    if not cut:
        return line + f"none cut by {key} {length}"
    return line + (f"{cut} of {len(encoded)} ({100 * cut / len(encoded):.1f} %) cut by {key} {length} "
                   f"(raise it to {longest + extra} to keep them whole)")


register(TaskType("translation", TranslationParams, TranslationRunner,
                  "Sequence to sequence with an encoder-decoder or a decoder-only model (prompt, separator, target): "
                  "teacher forcing, beam search, BLEU/chrF (sacrebleu)."))
