"""Fine-tuned task heads → `transformers` task classes (`BertForSequenceClassification`, ...).

A fine-tuned run's graph is its encoder (or decoder) plus a head. The head is
the chain of head ops (`pool`, `linear`, `classification_head`, `span_head`)
that ends at the task's output; the node it starts from is the trunk. The
trunk's part of the graph must rebuild exactly as the family's base model
(`match_family` on it, as for any export); the head chain must have the
layout of the family's task class, op by op (`HEADS`): a BERT classifier
reads the tanh pooler of [CLS], RoBERTa's has its own dense + tanh layer,
DistilBERT's a ReLU pre-classifier, GPT-2's scores the last real token
without a bias. A head of any other shape is refused by name, saying what the
class would need: a class that computed something else would load the
weights without complaint and predict wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from torch import nn

from specc.graph import LayerGraph
from specc.graph.subgraph import subgraph
from specc.graph.types import Node
from specc.hf.exporter import Exported, export_model, match_family
from specc.hf.family import GraphView, NotRepresentable
from specc.hf.families import KEY_LAYOUTS
from specc.hf.rules import Layout, Rule
from specc.hf.weights import export_state_dict
from specc.ops.records.basic import LinearParams, PoolParams
from specc.ops.records.heads import ClassifierParams

Kind = Literal["sequence", "token", "span", "lm"]
HEAD_OPS = frozenset({"classification_head", "span_head", "linear", "pool", "dropout"})
_KIND_OF_TASK: dict[str, Kind] = {"classification": "sequence", "regression": "sequence",
                                  "token_classification": "token", "extractive_qa": "span", "translation": "lm"}
_SUFFIX = {"sequence": "ForSequenceClassification", "token": "ForTokenClassification", "span": "ForQuestionAnswering"}
_PREFIX = {"bert": "bert.", "roberta": "roberta.", "distilbert": "distilbert.", "gpt2": "transformer."}
_CLASS = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert", "gpt2": "GPT2", "llama": "Llama", "t5": "T5",
          "bart": "Bart"}


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


Check = Callable[[list[Node], str], list[Step]]  # head chain (trunk first) → steps, or NotRepresentable


def export_task_model(graph: LayerGraph, model: nn.Module, head: TaskHead) -> Exported:
    """The `transformers` task class, config and state dict of a fine-tuned run; `NotRepresentable` (naming
    the head node, the class it would need and what differs) if the head is not that class's."""
    kind = head.kind
    if kind == "lm":  # translation: the whole model is a (seq2seq or causal) LM; compare what the logits read
        return export_model(graph, model, [head.output])
    chain, trunk = head_chain(graph, graph.outputs[head.output])
    family, base, config = match_family(body(graph, trunk), ["hidden"])
    name = f"{_CLASS.get(family.model_type, family.model_type)}{_SUFFIX[kind]}"
    check = HEADS.get((family.model_type, kind))
    if check is None:
        raise NotRepresentable(f"head node '{chain[-1].name}': export-hf does not write {name} (its task classes: "
                               f"{', '.join(sorted(_names()))})")
    steps = check(chain, name)
    prefix = _PREFIX[family.model_type]
    view = GraphView(body(graph, trunk))
    lay = family.layout(view, base)
    rules = KEY_LAYOUTS[base.arch].rules(Layout(prefix, lay.layers, lay.decoder_layers, lay.parts))
    state = export_state_dict(model, rules + [r for s in steps for r in s.rules])
    config = {**config, "architectures": [name], **head_config(head, family.model_type, steps)}
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
    whole = LayerGraph(graph.spec, graph.inputs, {"hidden": trunk}, graph.groups, graph.nodes, graph.graph)
    return subgraph(whole, ["hidden"])


def head_config(head: TaskHead, model_type: str, steps: list[Step]) -> dict[str, Any]:
    """num_labels, id2label / label2id, problem_type, and the head's dropout under the family's name."""
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
    key = "seq_classif_dropout" if model_type == "distilbert" else "classifier_dropout"
    if dropout is not None and (head.kind == "sequence" or model_type != "distilbert"):  # DistilBERT's tagger uses `dropout`
        config[key] = dropout
    return config


# -- the layouts of the task classes ---------------------------------------------------------------
def _refuse(chain: list[Node], name: str, needs: str, found: str) -> NotRepresentable:
    return NotRepresentable(f"head node '{chain[-1].name}' cannot be exported as {name}: {name} computes {needs}; "
                            f"the spec's head {found}")


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


def _ops(chain: list[Node]) -> list[Node]:
    return [n for n in chain if n.op != "dropout"]


def _linear(node: str, src: str, bias: bool = True) -> list[Rule]:
    rules = [Rule(f"{node}.weight", (f"{src}.weight",))]
    return rules + [Rule(f"{node}.bias", (f"{src}.bias",))] if bias else rules


def _is_pool(n: Node, mode: str) -> bool:
    return isinstance(n.params, PoolParams) and n.params.mode == mode


def _is_classifier(n: Node, hidden: bool) -> bool:
    return isinstance(n.params, ClassifierParams) and n.params.hidden == hidden


def _is_dense(n: Node, activation: str, bias: bool = True) -> bool:
    p = n.params
    return isinstance(p, LinearParams) and p.activation == activation and p.bias == bias and p.in_dim == p.out_dim


def _token(chain: list[Node], name: str) -> list[Step]:
    """…ForTokenClassification: dropout, then one linear layer over every token's hidden state."""
    ops = _ops(chain)
    if len(ops) != 1 or not _is_classifier(ops[0], False):
        raise _refuse(chain, name, "one linear layer over each token's last hidden state "
                      "(a classification_head without `hidden`)", _describe(chain))
    return [Step(ops[0], _linear(f"{ops[0].name}.out", "classifier"))]


def _span(chain: list[Node], name: str) -> list[Step]:
    """…ForQuestionAnswering: `qa_outputs`, a linear layer to (start, end) per token."""
    ops = _ops(chain)
    if len(ops) != 1 or ops[0].op != "span_head":
        raise _refuse(chain, name, "start and end logits from one linear layer (a span_head) on the last hidden "
                      "state", _describe(chain))
    return [Step(ops[0], _linear(ops[0].name, "qa_outputs"))]


def _bert_sequence(chain: list[Node], name: str) -> list[Step]:
    """BertForSequenceClassification: [CLS] → pooler (dense + tanh) → dropout → classifier; the pooler may
    be a linear node (BERT's `pooler`) or the classification_head's own dense layer."""
    ops = _ops(chain)
    if len(ops) == 3 and _is_pool(ops[0], "first") and _is_dense(ops[1], "tanh") and _is_classifier(ops[2], False):
        return [Step(ops[1], _linear(ops[1].name, "bert.pooler.dense")), Step(ops[2], _linear(f"{ops[2].name}.out", "classifier"))]
    if len(ops) == 2 and _is_pool(ops[0], "first") and _is_classifier(ops[1], True):
        head = ops[1].name
        return [Step(ops[1], _linear(f"{head}.dense", "bert.pooler.dense") + _linear(f"{head}.out", "classifier"))]
    raise _refuse(chain, name, "the first token's ([CLS]) hidden state → a dense + tanh pooler → a linear "
                  "classifier (pool mode first → linear tanh → classification_head)", _describe(chain))


def _roberta_sequence(chain: list[Node], name: str) -> list[Step]:
    """RobertaForSequenceClassification: <s> → dropout → dense + tanh → dropout → out_proj."""
    ops = _ops(chain)
    if len(ops) == 2 and _is_pool(ops[0], "first") and _is_classifier(ops[1], True):
        head = ops[1].name
        return [Step(ops[1], _linear(f"{head}.dense", "classifier.dense") + _linear(f"{head}.out", "classifier.out_proj"))]
    raise _refuse(chain, name, "the first token's hidden state → dense + tanh → a linear layer (pool mode first "
                  "→ classification_head with hidden = true)", _describe(chain))


def _distilbert_sequence(chain: list[Node], name: str) -> list[Step]:
    """DistilBertForSequenceClassification: [CLS] → pre_classifier (dense + ReLU) → dropout → classifier."""
    ops = _ops(chain)
    if len(ops) == 3 and _is_pool(ops[0], "first") and _is_dense(ops[1], "relu") and _is_classifier(ops[2], False):
        return [Step(ops[1], _linear(ops[1].name, "pre_classifier")), Step(ops[2], _linear(f"{ops[2].name}.out", "classifier"))]
    raise _refuse(chain, name, "the first token's hidden state → dense + ReLU (pre_classifier) → a linear "
                  "classifier (pool mode first → linear relu → classification_head)", _describe(chain))


def _gpt2_sequence(chain: list[Node], name: str) -> list[Step]:
    """GPT2ForSequenceClassification: `score`, a linear layer without bias, read at the last real token."""
    ops = _ops(chain)
    score = ops[-1].params
    if (len(ops) == 2 and _is_pool(ops[0], "last") and "mask" in ops[0].inputs and isinstance(score, LinearParams)
            and not score.bias and score.activation == "identity"):
        return [Step(ops[1], _linear(ops[1].name, "score", bias=False))]
    raise _refuse(chain, name, "a linear layer without bias (`score`) at the last real token (pool mode last, "
                  "masked → linear with bias = false)", _describe(chain))


HEADS: dict[tuple[str, Kind], Check] = {
    ("bert", "sequence"): _bert_sequence, ("roberta", "sequence"): _roberta_sequence,
    ("distilbert", "sequence"): _distilbert_sequence, ("gpt2", "sequence"): _gpt2_sequence,
    **{(family, "token"): _token for family in ("bert", "roberta", "distilbert", "gpt2")},
    **{(family, "span"): _span for family in ("bert", "roberta", "distilbert", "gpt2")},
}


def _names() -> list[str]:
    return [f"{_CLASS[f]}{_SUFFIX[k]}" for f, k in HEADS]

