"""The task heads of a family's `transformers` task classes, as plain data a family file declares.

A family that exports fine-tuned task heads (`BertForSequenceClassification`, ...)
says here, in its `Family.heads`, which task classes it has, the base model's
prefix in their state dicts, and each class's head layout op by op: the ops the
spec's head must have (trunk first, dropout aside) and the `transformers`
modules their weights go to. `specc.hf.heads` interprets these records; they
sit below it (and below the exporter it imports) so that family files can
declare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskKind = Literal["sequence", "token", "span"]


@dataclass(frozen=True)
class HeadOp:
    """One op of a task class's head, what its params must be, and where its weights go."""

    op: str  # "pool", "linear", "classification_head" or "span_head"
    weights: tuple[tuple[str, str], ...] = ()  # (module under the node, "" for the node itself; transformers module)
    mode: str | None = None  # pool: "first" ([CLS]) or "last"
    masked: bool = False  # pool: must read the attention mask (the last *real* token)
    activation: str | None = None  # linear: its activation
    bias: bool = True  # linear: has a bias (and so do the transformers modules of `weights`)
    square: bool = False  # linear: in_dim == out_dim (a dense layer, not the output projection)
    hidden: bool = False  # classification_head: with its own dense + tanh layer before the output


@dataclass(frozen=True)
class TaskClass:
    """One task class (`<stem>For<kind>`): the head layouts it accepts, any one of them."""

    kind: TaskKind
    layouts: tuple[tuple[HeadOp, ...], ...]
    needs: str  # what the class computes, said when a head fits no layout
    dropout_key: str | None = "classifier_dropout"  # the config field of the head's dropout; None: not written


@dataclass(frozen=True)
class TaskHeads:
    """A family's task classes and the prefix of the base model in their state dicts ("bert.")."""

    prefix: str
    classes: tuple[TaskClass, ...]

    def get(self, kind: str) -> TaskClass | None:
        return next((c for c in self.classes if c.kind == kind), None)


# The token and span classes every encoder family shares: one linear layer on the last hidden state.
TOKEN = TaskClass("token", ((HeadOp("classification_head", (("out", "classifier"),)),),),
                  "one linear layer over each token's last hidden state (a classification_head without `hidden`)")
SPAN = TaskClass("span", ((HeadOp("span_head", (("", "qa_outputs"),)),),),
                 "start and end logits from one linear layer (a span_head) on the last hidden state")
