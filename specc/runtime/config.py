"""Pydantic models of a spec's runtime sections: [tokenizer], [data], [objective], [train].

Validated with spans like the architecture (through `specc.runtime.section`, as
every runtime section is): `load_run_config` maps every error to the file, line
and column where the offending key or value is written. Numeric values may be
expressions over `[params]` (``vocab_size = "vocab"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Iterable, Literal

from pydantic import BeforeValidator, Field, PositiveFloat

from specc.diagnostics import Collector, Diagnostic, Span, did_you_mean
from specc.graph import LayerGraph
from specc.graph.names import matches
from specc.graph.queries import token_vocab, usable_positions
from specc.schema import ModelSpec
from specc.runtime.section import Section, validate_section


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value  # TOML has arrays, not tuples


Beta = Annotated[float, Field(ge=0.0, lt=1.0)]  # Adam's moment decay: torch refuses one outside [0, 1)
# The share of documents (or examples) held out when no validation split is given. The floor keeps 1 / fraction
# a finite count: 1e-320 is positive yet its reciprocal overflows to inf.
HeldOutFraction = Annotated[float, Field(ge=1e-6, lt=0.5)]


def held_out_every(val_fraction: float) -> int:
    """Every n-th document of a corpus is held out for validation (n from the declared fraction)."""
    return max(2, round(1 / val_fraction))


class TokenizerConfig(Section):
    kind: Literal["bpe", "wordpiece", "unigram"] = "bpe"
    vocab_size: int = Field(default=0, ge=0)  # 0: the spec's `vocab` param
    path: str | None = None  # a pretrained tokenizer.json instead of training one
    lowercase: bool = False
    sentinels: int = Field(default=0, ge=0, le=1000)  # T5's <extra_id_N> tokens
    min_frequency: int = Field(default=2, ge=1)
    # Training reads the first sample_bytes of text (or sample_docs documents) of the train split:
    # a tokenizer needs a sample, not a corpus of several GB.
    sample_bytes: int = Field(default=100_000_000, gt=0)
    sample_docs: int | None = Field(default=None, gt=0)


MAX_LINE_BYTES = 64 << 20


class DataConfig(Section):
    # text, JSONL, Parquet or a datasets folder (save_to_disk); "auto": each file by its suffix. Compressed files
    # (.gz, .bz2, .xz, .zst) read as their inner format.
    source: Literal["default", "text", "jsonl", "parquet", "datasets", "auto"] = "default"
    path: str | None = None  # a file or a folder of files
    include: list[str] = []  # a folder's files to read, as globs relative to it ("**/*.md"); default: the source's suffixes
    text_field: str = "text"
    val_fraction: HeldOutFraction = 0.1
    max_documents: int | None = Field(default=None, gt=0)
    on_bad_record: Literal["error", "skip"] = "error"  # a bad line or an empty file: stop, or skip and count it
    shard_bytes: int = Field(default=64_000_000, gt=0)  # input per token-store shard (specc.runtime.data.prepare)
    # a longer line (text or JSONL) is a bad record, read no further than this: one line costs a few times its size
    max_line_bytes: int = Field(default=MAX_LINE_BYTES, gt=0)


class LossSpike(Section):
    """[train.loss_spike]: a loss above `factor` x the mean of the last `window` steps is a spike; its update
    is skipped or applied (`action`); `patience` spikes in a row stop the run (specc.runtime.train.guard)."""

    window: int = Field(default=50, ge=2)
    factor: float = Field(default=3.0, gt=1.0)
    patience: int = Field(default=3, gt=0)
    action: Literal["skip", "stop"] = "skip"


class TrainConfig(Section):
    steps: int = Field(default=1000, gt=0)
    # The global batch of a step is batch_size x grad_accum samples on any number of processes;
    # under torchrun each process takes an equal share (specc.runtime.distributed.split_batch).
    batch_size: int = Field(default=16, gt=0)
    seq_len: int = Field(default=128, gt=1)
    grad_accum: int = Field(default=1, gt=0)
    lr: float = Field(default=3e-4, gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup: int = Field(default=50, ge=0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = Field(default=0.01, ge=0)
    no_decay: list[Literal["bias", "norm", "embedding"]] = ["bias", "norm", "embedding"]
    # adamw: fused AdamW (betas, eps); adafactor: torch.optim.Adafactor (factored second moments, no first
    # moment: a fraction of AdamW's state); sgd: SGD with `momentum`.
    optimizer: Literal["adamw", "adafactor", "sgd"] = "adamw"
    betas: Annotated[tuple[Beta, Beta], BeforeValidator(_tuple)] = (0.9, 0.95)
    eps: float = Field(default=1e-8, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    clip: float = Field(default=1.0, ge=0)  # 0 disables clipping
    # Learning-rate multipliers by parameter name pattern (as `freeze`'s: `*` any text, `A:B` a layer range), e.g.
    # {"encoder_bias.*" = 30}: a small table that must grow large under AdamW, whose steps are about `lr` each
    # (docs/finetuning.md, "Why t5-tiny translated badly"). A parameter several patterns match takes their product.
    lr_scale: dict[str, PositiveFloat] = {}
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype on GPU; fp16 is refused (check_precision)
    compile: bool = False
    # Block nodes (e.g. ["h"], or ["encoder", "decoder"]) whose layers recompute their activations in the
    # backward instead of keeping them from the forward: less memory for about one more forward of each.
    activation_checkpointing: list[str] = []
    parallel: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: replicate (DDP) or shard each repeated layer (FSDP2)
    seed: int = Field(default=0, ge=0)  # numpy's generators refuse a negative seed
    # Experiment trackers besides metrics.jsonl, each only when named: "tensorboard", "mlflow", "wandb"
    # (specc.runtime.trackers; each an extra: pip install 'specc[mlflow]').
    loggers: list[Literal["tensorboard", "mlflow", "wandb"]] = []
    log_every: int = Field(default=10, gt=0)
    eval_every: int = Field(default=100, gt=0)
    eval_batches: int = Field(default=10, gt=0)
    save_every: int = Field(default=100, gt=0)
    keep: int = Field(default=2, gt=0)
    # Keep the checkpoint of the best evaluation (the monitored metric) beside the last `keep`, and read it by
    # default afterwards (final scores, eval, predict, export-hf, merge). Default: on for fine-tuning, off for pretraining.
    keep_best: bool | None = None
    early_stopping: int | None = Field(default=None, gt=0)  # evaluations without improvement
    on_nan: Literal["stop", "skip"] = "stop"  # a NaN/inf loss stops the run at that step, or its update is skipped
    loss_spike: LossSpike | None = None
    sample_prompt: str = ""
    sample_tokens: int = Field(default=60, ge=0)


def unmatched_patterns(code: str, key: str, patterns: Iterable[str], graph: LayerGraph,
                       span: Span | None) -> list[Diagnostic]:
    """Each parameter-name pattern of `key` (`freeze`, `lr_scale`) that names no parameter: a misspelt one would
    silently change nothing."""
    names = graph.parameter_names()
    return [Diagnostic(code, f"{key} pattern '{p}' matches no parameter of the model", span,
                       "patterns match names such as " + ", ".join(list(names)[:3]))
            for p in patterns if not any(matches(n, [p]) for n in names)]


def check_lr_scale(train: TrainConfig, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    """Every `lr_scale` pattern must name a parameter."""
    return unmatched_patterns("E089", "lr_scale", train.lr_scale, graph, span)


def check_precision(train: TrainConfig, span: Span | None) -> list[Diagnostic]:
    """fp16 is refused: without loss scaling its gradients underflow, and bf16 gives the same memory saving
    with fp32's range, needing none."""
    if train.precision != "fp16":
        return []
    return [Diagnostic("E088", "precision \"fp16\" is not supported: fp16 gradients underflow without loss scaling, "
                       "which specc does not do", span, "use \"bf16\" (the same memory and speed on GPUs that have it, "
                       "with fp32's range, so no scaling is needed) or \"fp32\"")]


def check_positions(train: TrainConfig, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    """A training sequence must fit the model's learned positions (an index past them is no number at all)."""
    limit = usable_positions(graph)
    if limit is not None and train.seq_len > limit:
        return [Diagnostic("E080", f"seq_len {train.seq_len} exceeds the model's {limit} positions", span,
                           f"set seq_len to at most {limit}")]
    return []


def check_vocab(tok: TokenizerConfig, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    """A tokenizer trained to `vocab_size` tokens must fit the model's token embedding: caught here rather
    than after the tokenizer is trained (E065 at train time, which still checks a pretrained tokenizer.json)."""
    rows = token_vocab(graph)
    if tok.path is None and rows is not None and tok.vocab_size > rows:
        return [Diagnostic("E065", f"tokenizer.vocab_size {tok.vocab_size} exceeds the model's vocabulary of {rows} "
                           "tokens (its embedding rows)", span, f"set [tokenizer] vocab_size to at most {rows}, "
                           "or 0 for the spec's `vocab`")]
    return []


def check_held_out(data: DataConfig, span: Span | None) -> list[Diagnostic]:
    """With `max_documents`, the validation split must get at least one document."""
    every = held_out_every(data.val_fraction)
    if data.max_documents is not None and data.max_documents < every:
        return [Diagnostic("E014", f"data.max_documents {data.max_documents} leaves no validation document: "
                           f"val_fraction {data.val_fraction:g} holds out every {every}th", span,
                           f"set max_documents to at least {every}, or raise val_fraction")]
    return []


def check_checkpointing(train: TrainConfig, graph: LayerGraph, span: Span | None) -> list[Diagnostic]:
    """Every name in `activation_checkpointing` must be a block node of the model (a layer or a repeat)."""
    blocks = [g.name for g in graph.groups if g.kind != "op"]
    out = []
    for name in train.activation_checkpointing:
        if name not in blocks:
            out.append(Diagnostic("E069", f"activation_checkpointing names '{name}', which is not a block node of the model",
                                  span, did_you_mean(name, blocks) or
                                  (f"block nodes: {', '.join(blocks)}" if blocks else "the model has no block nodes")))
    return out


@dataclass(frozen=True)
class RunConfig:
    tokenizer: TokenizerConfig
    data: DataConfig
    train: TrainConfig
    objectives: dict[str, dict[str, Any]]  # name → options; validated by the objective registry


def load_run_config(spec: ModelSpec) -> RunConfig:
    """Validate the runtime sections of `spec`; raises `SpecError` with spans."""
    diags = Collector()
    tok = validate_section(TokenizerConfig, spec.sections.get("tokenizer", {}), spec, ("tokenizer",), diags)
    data = validate_section(DataConfig, spec.sections.get("data", {}), spec, ("data",), diags)
    train = validate_section(TrainConfig, spec.sections.get("train", {}), spec, ("train",), diags)
    objectives = spec.sections.get("objective", {})
    diags.raise_if_any()
    assert tok is not None and data is not None and train is not None
    if tok.vocab_size == 0 and isinstance(spec.params.get("vocab"), int):
        tok = tok.model_copy(update={"vocab_size": spec.params["vocab"]})
    return RunConfig(tok, data, train, objectives)
