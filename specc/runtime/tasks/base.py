"""The task registry and the interface every task type implements.

A task type is one record: its pydantic params (what a ``[tasks.NAME]`` table
may hold), and a runner class that knows how its examples become model inputs
and targets, its loss, how outputs become predictions, which metrics apply and
what the trivial baseline predicts. The generic trainer sees none of this: a
`TaskWorkload` wraps a runner in the trainer's `Workload` interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Iterable, Iterator, Literal, Mapping, Sequence

from pydantic import BeforeValidator, Field

from specc.lazy import lazy_import
from specc.diagnostics import Diagnostic, Span, did_you_mean
from specc.graph import LayerGraph
from specc.runtime.config import HeldOutFraction, TrainConfig
from specc.runtime.batch import Batch, LossSums
from specc.registry import LazyRegistry
from specc.runtime.section import Section
from specc.runtime.data.tokenizer import TextTokenizer

if TYPE_CHECKING:  # Record: annotations only (its module imports every file-format reader)
    from specc.runtime.data.formats import Record
    import numpy as np
    import torch
else:  # imported on first use, so `specc check` runs without numpy or torch (specc/lazy.py)
    np = lazy_import("numpy")
    torch = lazy_import("torch")

MASK_OF = {"tokens": "attention_mask", "src": "src_mask", "tgt": "tgt_mask"}  # padding mask per token input


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


Clearable = Annotated[str | None, BeforeValidator(_blank_is_none)]  # "" clears a value inherited through `extends`


class ParallelFiles(Section):
    """A split as two line-aligned files (WMT/OPUS ``train.en`` + ``train.de``): line N of one translates line N of the other."""

    src_file: str
    tgt_file: str


Split = str | ParallelFiles | None
FileFormat = Literal["auto", "jsonl", "csv", "tsv", "squad", "text", "conll", "conllu", "parquet", "datasets"]


class TaskData(Section):
    """Where a task's examples come from: a built-in demo, or files (paths relative to the spec).

    Every key has a description: docs/finetuning.md's table of data keys is generated from them
    (specc.runtime.tasks.keys_doc), and a test fails when one is missing or the doc is stale."""

    demo: Clearable = Field(default=None, description='a built-in demo data set instead of files (`""` clears an '
                            "inherited one)")
    format: FileFormat = Field(default="auto", description="the files' format; `auto`: by the name (.jsonl, .csv, .tsv, "
                               ".json SQuAD, .txt, .conll, .conllu, .parquet, optionally .gz/.bz2/.xz/.zst; a folder is "
                               "`datasets`)")
    train: Split = Field(default=None, description="training file (relative to the spec), or "
                         "`{ src_file = ..., tgt_file = ... }` for line-aligned parallel files")
    validation: Split = Field(default=None, description="validation file or pair; without it, every k-th training "
                              "example is held out")
    test: Split = Field(default=None, description="test file or pair, scored at the end")
    columns: list[str] | None = Field(default=None, min_length=1, description="column names of a CSV/TSV without a "
                                      "header row; CoNLL column names")
    label_names: list[str] | None = Field(default=None, min_length=1, description="names of integer label ids in the "
                                          "data (id i is the i-th name)")
    val_fraction: HeldOutFraction = Field(default=0.1, description="share of train held out when there is no "
                                "validation split")
    max_train: int | None = Field(default=None, gt=0, description="use only the first N training examples")

    def reads(self) -> tuple[str, ...]:
        """The fields a record must hold (dotted paths allowed), so a header row naming none of them is caught."""
        return ()

    def label_field(self) -> str | None:
        """The field whose integer ids `label_names` names (a label, or a list of tags)."""
        return None


class TaskParams(Section):
    """Keys every ``[tasks.NAME]`` table may hold; task types add their own."""

    type: str = Field(description="the task type (see `specc ops`)")
    head: str = Field(description="the model output the task reads")
    from_: Clearable = Field(default=None, alias="from", description="pretrained run to start from (relative to the "
                             "spec); \"\" for none")
    metrics: list[str] | None = Field(default=None, description="metrics to report (default: the type's)")
    monitor: str | None = Field(default=None, description="metric for early stopping (default: the first)")
    max_len: int = Field(default=128, gt=3, description="tokens per input (longer inputs are truncated)")
    eval_batch_size: int = Field(default=32, gt=0, description="examples per evaluation batch")
    freeze: list[str] = Field(default_factory=list, description="parameter name patterns kept frozen, e.g. "
                              "\"word_embeddings.*\", \"layer.0:2.*\"")
    layer_decay: float = Field(default=1.0, gt=0.0, le=1.0, description="learning rate × decay ^ (layers above)")
    head_lr: float | None = Field(default=None, gt=0.0, description="learning rate of newly initialised parameters")
    reinit: list[str] = Field(default_factory=list, description="checkpoint tensors allowed to differ in shape "
                              "(started afresh)")
    data: TaskData = Field(description="where the examples come from: [tasks.NAME.data]")
    train: TrainConfig = Field(default_factory=TrainConfig, description="training settings: [tasks.NAME.train]")


@dataclass
class Feature:
    """One model input row cut from one example (QA windows make several per example)."""

    example: int  # index of the record it came from
    inputs: dict[str, list[int]]  # graph input name → unpadded ids (token ids, segment ids)
    target: Any = None  # label id, value, per-token label ids, (start, end), target ids
    meta: Any = None  # what decoding needs (word index per token, character offsets, ...)
    untruncated: Any = None  # figures of the text before its cut, for `describe` (translation: `SideSizes` per side)

    @property
    def tokens(self) -> int:
        return sum(len(v) for k, v in self.inputs.items() if k in MASK_OF)


class TaskRunner(ABC):
    """How one task type trains and predicts. Subclasses set the class attributes and override the hooks."""

    kind: ClassVar[str]  # metric kind it produces (see specc.runtime.tasks.metrics)
    default_metrics: ClassVar[tuple[str, ...]]
    inputs: ClassVar[tuple[str, ...]] = ("tokens",)  # graph inputs it must feed
    label_set: ClassVar[bool] = False  # whether it has a discrete label set (declared or inferred)
    baseline_name: ClassVar[str] = ""

    def __init__(self, name: str, params: Any, graph: LayerGraph, tok: TextTokenizer, labels: list[str] | None):
        self.name, self.params, self.graph, self.tok, self.labels = name, params, graph, tok, labels
        self.label_id = {label: i for i, label in enumerate(labels or [])}
        self.specials = tok.specials

    # -- checks before anything runs ----------------------------------------------
    @classmethod
    def check(cls, params: Any, graph: LayerGraph, at: Callable[[str], Span | None]) -> list[Diagnostic]:
        """Mistakes against the architecture (head shape, inputs), found at `specc check` time;
        `at(key)` is where a key of the task's table is written."""
        return []

    @classmethod
    def labels_from(cls, params: Any, records: Sequence[Record]) -> list[str] | None:
        """The label set inferred from training records (when the spec declares none)."""
        return None

    @classmethod
    def metrics_for(cls, params: Any) -> tuple[str, ...]:
        """The metrics reported when the task declares none."""
        return cls.default_metrics

    # -- what is tuned on validation and kept with the checkpoint -----------------------
    def calibrate(self, predictions: Sequence[dict[str, Any]], records: Sequence[Record]) -> None:
        """Tune decision settings on the validation split's predictions (nothing by default)."""

    def state(self) -> dict[str, Any]:
        """What `calibrate` tuned, saved in the checkpoint's task.json and given back to `restore`."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what `state` saved (a loaded run predicts as it was evaluated)."""

    # -- data -----------------------------------------------------------------------
    @abstractmethod
    def encode(self, records: Sequence[Record], gold: bool) -> list[Feature]:
        ...

    @abstractmethod
    def targets(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        ...

    def collate(self, features: Sequence[Feature], gold: bool = True) -> Batch:
        """Pad every input of `features` to the longest row (dynamic padding), with padding masks."""
        inputs: dict[str, torch.Tensor] = {}
        for name in features[0].inputs:
            rows = [f.inputs[name] for f in features]
            width = max(len(r) for r in rows)
            fill = self.specials.pad if name in MASK_OF else 0
            inputs[name] = torch.tensor([r + [fill] * (width - len(r)) for r in rows], dtype=torch.long)
            mask = MASK_OF.get(name)
            if mask is not None and mask in self.graph.inputs:
                inputs[mask] = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long)
        targets = self.targets(features) if gold else {}
        return Batch(inputs, targets, sum(f.tokens for f in features))

    # -- training ---------------------------------------------------------------------
    @abstractmethod
    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch, sums: LossSums) -> torch.Tensor:
        ...

    # -- prediction ---------------------------------------------------------------------
    @abstractmethod
    def predict(self, model: torch.nn.Module, records: Sequence[Record], features: Sequence[Feature],
                device: torch.device, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """One prediction (a JSON-able dict) per record, from its features encoded with or without gold
        answers alike (a gold feature carries what prediction reads)."""
        ...

    def loss_and_predictions(self, model: torch.nn.Module, records: Sequence[Record], features: Sequence[Feature],
                             device: torch.device) -> tuple[LossSums, list[dict[str, Any]]]:
        """The loss over gold `features` (in float32, as predictions are made) and the predictions of `records`.
        Here two passes: a generating task's predictions are not the teacher-forced outputs its loss reads."""
        sums = LossSums()
        for chunk, batch, outputs in self.forward_batches(model, features, device, gold=True):
            self.loss(outputs, batch, sums)
        return sums, self.predict(model, records, features, device)

    @abstractmethod
    def value(self, prediction: Mapping[str, Any]) -> Any:
        """What the metrics compare, from a prediction."""
        ...

    @abstractmethod
    def gold(self, record: Record) -> Any:
        """What the metrics compare, from a labelled record."""
        ...

    @abstractmethod
    def baseline(self, train: Sequence[Record], records: Sequence[Record]) -> list[Any]:
        """The trivial baseline's values for `records` (majority class, copy the source, ...)."""
        ...

    def notes(self, predictions: Sequence[Any], golds: Sequence[Any]) -> dict[str, str]:
        """Extra text to report with the metrics (sacrebleu's signature)."""
        return {}

    def describe(self, records: Sequence[Record], features: Sequence[Feature] = ()) -> list[str]:
        """Lines about how the tokenizer and the declared lengths treat these (training) records, said before
        training: what a user should know about their data that the loss will not tell them. `features`: the
        records' encoded features when at hand, whose figures a runner reads rather than tokenizing again."""
        return []

    # -- helpers ----------------------------------------------------------------------
    def token_inputs(self, tokens: list[int], segments: list[int]) -> dict[str, list[int]]:
        """A feature's inputs: its token ids, and its segment ids when the model has a `segments` input."""
        return {"tokens": tokens, **({"segments": segments} if "segments" in self.graph.inputs else {})}

    def forward_batches(self, model: torch.nn.Module, features: Sequence[Feature], device: torch.device, gold: bool
                        ) -> Iterator[tuple[Sequence[Feature], Batch, Mapping[str, torch.Tensor]]]:
        """The model's outputs for `features`, `eval_batch_size` at a time, in eval mode without gradients
        (with their targets when `gold`); the model's mode is given back at the end."""
        size = self.params.eval_batch_size
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for first in range(0, len(features), size):
                    chunk = features[first : first + size]
                    batch = self.collate(chunk, gold=gold).to(device)
                    yield chunk, batch, model(**batch.inputs)
        finally:
            model.train(was_training)

    def head_rows(self, chunk: Sequence[Feature], outputs: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
        """The head output of each feature of a batch (padding positions cut off), in float32."""
        head = outputs[self.params.head].float().cpu().numpy()
        return [row[: len(f.inputs["tokens"])] if row.ndim >= 2 and "tokens" in f.inputs else row for f, row in zip(chunk, head)]

    def head_outputs(self, model: torch.nn.Module, features: Sequence[Feature], device: torch.device,
                     progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
        """The head output of each feature (padding positions cut off), in feature order, in float32."""
        out: list[np.ndarray] = []
        for chunk, _, outputs in self.forward_batches(model, features, device, gold=False):
            out += self.head_rows(chunk, outputs)
            if progress is not None:
                progress(len(chunk))
        return out


class HeadRunner(TaskRunner):
    """A task whose predictions are read off each feature's head output (classification, tagging, extractive
    QA): one forward pass gives both the validation loss and the predictions."""

    @abstractmethod
    def decode(self, records: Sequence[Record], features: Sequence[Feature], heads: Sequence[np.ndarray]
               ) -> list[dict[str, Any]]:
        """One prediction per record, from the head output of each of its features."""
        ...

    def predict(self, model: torch.nn.Module, records: Sequence[Record], features: Sequence[Feature],
                device: torch.device, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        return self.decode(records, features, self.head_outputs(model, features, device, progress))

    def loss_and_predictions(self, model: torch.nn.Module, records: Sequence[Record], features: Sequence[Feature],
                             device: torch.device) -> tuple[LossSums, list[dict[str, Any]]]:
        sums = LossSums()
        heads: list[np.ndarray] = []
        for chunk, batch, outputs in self.forward_batches(model, features, device, gold=True):
            self.loss(outputs, batch, sums)
            heads += self.head_rows(chunk, outputs)
        return sums, self.decode(records, features, heads)


@dataclass(frozen=True)
class TaskType:
    name: str
    params: type[TaskParams]
    runner: type[TaskRunner]
    doc: str = ""


# Each type's module, imported when the type is first looked up: a spec's check loads the types it declares only.
TASKS: LazyRegistry[TaskType] = LazyRegistry("task type", {
    "classification": "specc.runtime.tasks.classification",
    "regression": "specc.runtime.tasks.classification",
    "extractive_qa": "specc.runtime.tasks.qa",
    "token_classification": "specc.runtime.tasks.tagging",
    "translation": "specc.runtime.tasks.translation",
})
register = TASKS.register


# -- shared checks ---------------------------------------------------------------------
def needs_inputs(task: str, names: Iterable[str], graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    return [Diagnostic("E071", f"task type '{task}' feeds model input '{n}', which the model does not declare", span,
                       did_you_mean(n, graph.inputs)) for n in names if n not in graph.inputs]


def head_shape(graph: LayerGraph, head: str) -> tuple[Any, ...] | None:
    node = graph.outputs.get(head)
    return tuple(graph.shape_of(node)) if node is not None else None


def check_head(task: str, params: Any, graph: LayerGraph, at: Callable[[str], Span | None], *, reads: str, hint: str,
               rank: int, last: int | None = None, labels: Sequence[str] | None = None, noun: str = "labels"
               ) -> list[Diagnostic]:
    """What a task reading `tokens` checks of the model: it declares `tokens` (E071); the head has `rank` dimensions,
    the last one `last` long when given (E072: "`reads`, but head ... has shape ..." with `hint`); and with declared
    `labels`, one score per label (E073, the labels called `noun`)."""
    out = needs_inputs(task, ["tokens"], graph, at("type"))
    shape = head_shape(graph, params.head)
    if shape is None:
        return out
    if len(shape) != rank or (last is not None and shape[-1] != last):
        out.append(Diagnostic("E072", f"{reads}, but head '{params.head}' has shape {list(shape)}", at("head"), hint))
    elif labels is not None and shape[-1] != len(labels):
        out.append(Diagnostic("E073", f"the task declares {len(labels)} {noun} but head '{params.head}' gives "
                              f"{shape[-1]} scores", at("labels"), f"set the head's num_labels to the number of {noun}"))
    return out


@dataclass
class Encoded:
    """Token ids with the character span of each token in its text."""

    ids: list[int]
    offsets: list[tuple[int, int]] = field(default_factory=list)


def truncate_pair(a: list[int], b: list[int] | None, budget: int) -> tuple[list[int], list[int] | None]:
    """Drop tokens from the end of the longer sequence until both fit in `budget` (BERT's longest-first)."""
    a = list(a)
    b = list(b) if b is not None else None
    while len(a) + (len(b) if b is not None else 0) > budget:
        if b is not None and len(b) > len(a):
            b.pop()
        else:
            a.pop()
    return a, b


def cls_sep(tok: TextTokenizer, a: list[int], b: list[int] | None) -> tuple[list[int], list[int]]:
    """``[CLS] a [SEP]`` (+ ``b [SEP]``) and its segment ids (0 for the first part, 1 for the second)."""
    s = tok.specials
    ids = [s.cls] + a + [s.sep]
    segments = [0] * len(ids)
    if b is not None:
        ids += b + [s.sep]
        segments += [1] * (len(b) + 1)
    return ids, segments


def epoch_index(k: int, n: int, seed: int, cache: dict[int, np.ndarray]) -> int:
    """Sample `k` of an endless stream over `n` items: a fresh seeded permutation each epoch."""
    epoch, pos = divmod(k, n)
    if epoch not in cache:
        cache.clear()
        cache[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
    return int(cache[epoch][pos])
