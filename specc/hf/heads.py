"""Fine-tuned task heads → `transformers` task classes (`BertForSequenceClassification`, ...).

A fine-tuned run's graph is its encoder (or decoder) plus a head. The head is
the chain of head ops (`pool`, `linear`, `classification_head`, `span_head`)
that ends at the task's output; the node it starts from is the trunk. The
trunk's part of the graph must rebuild exactly as the family's base model
(`match_family` on it, as for any export); the head chain must have a
layout of the family's task class, op by op (declared in the family's file,
`Family.heads`, as `specc.hf.headlayout` records): a BERT classifier
reads the tanh pooler of [CLS], RoBERTa's has its own dense + tanh layer,
DistilBERT's a ReLU pre-classifier, GPT-2's scores the last real token
without a bias. A head of any other shape is refused by name, saying what the
class would need: a class that computed something else would load the
weights without complaint and predict wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from specc.graph import LayerGraph
from specc.graph.subgraph import subgraph
from specc.graph.types import Node
from specc.hf.exporter import Exported, export_model, match_family
from specc.hf.family import FAMILIES, GraphView, NotRepresentable
from specc.hf.families import KEY_LAYOUTS
from specc.hf.headlayout import HeadOp, TaskClass
from specc.hf.rules import Layout, Rule
from specc.hf.weights import export_state_dict
from specc.ops.records.basic import LinearParams, PoolParams
from specc.ops.records.heads import ClassifierParams

Kind = Literal["sequence", "token", "span", "lm"]
HEAD_OPS = frozenset({"classification_head", "span_head", "linear", "pool", "dropout"})
_KIND_OF_TASK: dict[str, Kind] = {"classification": "sequence", "regression": "sequence",
                                  "token_classification": "token", "extractive_qa": "span", "translation": "lm"}
_SUFFIX = {"sequence": "ForSequenceClassification", "token": "ForTokenClassification", "span": "ForQuestionAnswering"}


@dataclass(frozen=True)
class TaskHead:
    """What a fine-tuned run predicts: its task type, the graph output its head writes, its label names."""

    task_type: str
    output: str
    labels: list[str] | None = None

    @property
    def kind(self) -> Kind:
        if self.task_type not in _KIND_OF_TASK:
            known = ", ".join(sorted(_KIND_OF_TASK))
            raise NotRepresentable(f"a '{self.task_type}' task has no transformers class here (export-hf writes {known})")
        return _KIND_OF_TASK[self.task_type]


@dataclass
class Step:
    """One head node and what the task class holds in its place: weight rules (specc tensor → HF key)."""

    node: Node
    rules: list[Rule] = field(default_factory=list)


def export_task_model(graph: LayerGraph, model: nn.Module, head: TaskHead) -> Exported:
    """The `transformers` task class, config and state dict of a fine-tuned run; `NotRepresentable` (naming
    the head node, the class it would need and what differs) if the head is not that class's."""
    kind = head.kind
    if kind == "lm":  # translation: the whole model is a (seq2seq or causal) LM; compare what the logits read
        return export_model(graph, model, [head.output])
    chain, trunk = head_chain(graph, graph.outputs[head.output])
    family, base, config = match_family(body(graph, trunk), ["hidden"])
    name = f"{family.stem}{_SUFFIX[kind]}"
    task = family.heads.get(kind) if family.heads else None
    if family.heads is None or task is None:
        raise NotRepresentable(f"head node '{chain[-1].name}': export-hf does not write {name} (its task classes: "
                               f"{', '.join(sorted(_names()))})")
    steps = match_head(chain, name, task)
    prefix = family.heads.prefix
    view = GraphView(body(graph, trunk))
    lay = family.layout(view, base)
    rules = KEY_LAYOUTS[base.arch].rules(Layout(prefix, lay.layers, lay.decoder_layers, lay.parts))
    state = export_state_dict(model, rules + [r for s in steps for r in s.rules])
    config = {**config, "architectures": [name], **head_config(head, task, steps)}
    cls = type(base)(name, base.template, base.arch, prefix)
    return Exported(family, cls, config, state)


def head_chain(graph: LayerGraph, last: str) -> tuple[list[Node], str]:
    """The head's nodes from the trunk outwards, and the trunk node they read."""
    chain: list[Node] = []
    name = last
    while name in graph.nodes and graph.nodes[name].op in HEAD_OPS:
        node = graph.nodes[name]
        chain.append(node)
        name = node.inputs["x"]
    if not chain:
        raise NotRepresentable(f"the task output reads '{last}', a '{graph.nodes[last].op}' node, not a head "
                               f"({', '.join(sorted(HEAD_OPS - {'dropout'}))})")
    return chain[::-1], name


def body(graph: LayerGraph, trunk: str) -> LayerGraph:
    """The part of `graph` that `trunk` depends on, with `trunk` as its only output, named `hidden`."""
    whole = LayerGraph(graph.spec, graph.inputs, {"hidden": trunk}, graph.groups, graph.nodes)
    return subgraph(whole, ["hidden"])


def head_config(head: TaskHead, task: TaskClass, steps: list[Step]) -> dict[str, Any]:
    """num_labels, id2label / label2id, problem_type, and the head's dropout under the class's name for it."""
    out = steps[-1].node.params
    if head.kind == "span":
        return {}
    width = out.num_labels if isinstance(out, ClassifierParams) else out.out_dim if isinstance(out, LinearParams) else 0
    labels = head.labels or [f"LABEL_{i}" for i in range(width)]
    config: dict[str, Any] = {"id2label": {str(i): label for i, label in enumerate(labels)},
                              "label2id": {label: i for i, label in enumerate(labels)}, "num_labels": len(labels)}
    if head.task_type == "regression":
        config["problem_type"] = "regression"
    elif head.kind == "sequence":
        config["problem_type"] = "single_label_classification"
    dropout = getattr(out, "dropout", None)
    if dropout is not None and task.dropout_key is not None:
        config[task.dropout_key] = dropout
    return config


# -- the layouts of the task classes (declared in each family's `heads`) ------------------------------
def match_head(chain: list[Node], name: str, task: TaskClass) -> list[Step]:
    """One step per head op (dropout aside) of the first of the class's layouts the chain has, op by op;
    `NotRepresentable` (saying what `name` computes and what the spec's head is) if it has none."""
    ops = [n for n in chain if n.op != "dropout"]
    for layout in task.layouts:
        if len(ops) == len(layout) and all(_fits(n, want) for n, want in zip(ops, layout)):
            return [Step(n, [r for sub, src in want.weights for r in _linear(f"{n.name}.{sub}" if sub else n.name, src, want.bias)])
                    for n, want in zip(ops, layout)]
    raise NotRepresentable(f"head node '{chain[-1].name}' cannot be exported as {name}: {name} computes {task.needs}; "
                           f"the spec's head {_describe(chain)}")


def _fits(n: Node, want: HeadOp) -> bool:
    p = n.params
    if n.op != want.op:
        return False
    if isinstance(p, PoolParams):
        return p.mode == want.mode and (not want.masked or "mask" in n.inputs)
    if isinstance(p, LinearParams):
        return p.activation == want.activation and p.bias == want.bias and (not want.square or p.in_dim == p.out_dim)
    if isinstance(p, ClassifierParams):
        return p.hidden == want.hidden
    return True  # span_head: one fixed layout


def _describe(chain: list[Node]) -> str:
    def one(n: Node) -> str:
        p = n.params
        if isinstance(p, PoolParams):
            return f"pool (mode {p.mode}{', masked' if 'mask' in n.inputs else ''})"
        if isinstance(p, LinearParams):
            return f"linear ({p.activation}{', no bias' if not p.bias else ''})"
        if isinstance(p, ClassifierParams):
            return f"classification_head ({'dense + tanh, ' if p.hidden else ''}{p.num_labels} labels)"
        return n.op
    return "is " + " → ".join(one(n) for n in chain if n.op != "dropout")


def _linear(node: str, src: str, bias: bool = True) -> list[Rule]:
    rules = [Rule(f"{node}.weight", (f"{src}.weight",))]
    return rules + [Rule(f"{node}.bias", (f"{src}.bias",))] if bias else rules


def _names() -> list[str]:
    return [f"{f.stem}{_SUFFIX[c.kind]}" for f in FAMILIES.values() if f.heads for c in f.heads.classes]
