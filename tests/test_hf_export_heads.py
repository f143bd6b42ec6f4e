"""export-hf of fine-tuned task heads: each head layout specc maps becomes its `transformers` task class
(BERT / RoBERTa / DistilBERT / GPT-2 × sequence classification, token classification, extractive QA) whose
logits equal specc's forward on the same inputs; a head of another layout is refused by name.

The layouts are checked on tiny random models (every weight perturbed, so a tensor mapped to the wrong place
or left out shows); tests/tasks/test_hf_export_runs.py checks whole fine-tuned runs through `specc export-hf`
and `transformers.pipeline`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph import build_graph
from specc.graph.subgraph import subgraph
from specc.hf import NotRepresentable, TaskHead, export_task_model, write_hf_dir
from specc.schema import validate

transformers = pytest.importorskip("transformers")

PARAMS = {"vocab": 96, "max_seq": 40, "d_model": 32, "heads": 2, "layers": 2}
TRUNK = {"bert-base": "layer", "roberta-base": "layer", "distilbert-base": "layer", "gpt2-small": "ln_f"}
FAMILY = {"bert-base": "Bert", "roberta-base": "Roberta", "distilbert-base": "DistilBert", "gpt2-small": "GPT2"}
LABELS = ["neg", "neutral", "pos"]


def _head(base: str, kind: str) -> tuple[str, str]:
    """Nodes of the task class's head layout on `base`, and the task type."""
    trunk = TRUNK[base]
    if kind == "token":
        return f'out = {{ op = "classification_head", in = "{trunk}", d_model = "d_model", num_labels = 3, dropout = 0.1 }}', \
            "token_classification"
    if kind == "span":
        return f'out = {{ op = "span_head", in = "{trunk}", d_model = "d_model" }}', "extractive_qa"
    sequence = {
        "bert-base": 'out = { op = "classification_head", in = "pooler", d_model = "d_model", num_labels = 3, dropout = 0.1 }',
        "roberta-base": 'out = { op = "classification_head", in = "first_token", d_model = "d_model", num_labels = 3, '
                        'hidden = true, dropout = 0.1 }',
        "distilbert-base": 'first = { op = "pool", in = "layer", mode = "first" }\n'
                           'pre = { op = "linear", in = "first", in_dim = "d_model", out_dim = "d_model", activation = "relu" }\n'
                           'out = { op = "classification_head", in = "pre", d_model = "d_model", num_labels = 3, dropout = 0.2 }',
        "gpt2-small": 'last = { op = "pool", in = { x = "ln_f", mask = "attention_mask" }, mode = "last" }\n'
                      'out = { op = "linear", in = "last", in_dim = "d_model", out_dim = 3, bias = false }',
    }
    return sequence[base], "classification"


def _model(tmp_path: Path, base: str, nodes: str) -> tuple[object, torch.nn.Module]:
    """The task graph (the `out` output's part of the spec) and its model, every weight perturbed."""
    params = "\n".join(f"{k} = {v}" for k, v in PARAMS.items())
    path = tmp_path / "task.toml"
    path.write_text(f'format = 1\nextends = "specc:{base}"\nname = "task"\n\n[params]\n{params}\n\n'
                    f'[model.outputs]\nout = "out"\n\n[model.nodes]\n{nodes}\n')
    graph = subgraph(build_graph(validate(parse(path))), ["out"])
    model = compile_model(graph)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # biases and norms too: a zero-initialised tensor mapped wrongly still shows
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return graph, model.eval()


def _inputs(graph: object, pad: int) -> dict[str, torch.Tensor]:
    """Three right-padded rows of token ids (never the pad id), their mask, and random segments."""
    gen = torch.Generator().manual_seed(1)
    lengths = [12, 7, 9]
    tokens = torch.randint(3, PARAMS["vocab"], (3, 12), generator=gen)
    mask = torch.tensor([[1] * n + [0] * (12 - n) for n in lengths])
    tokens = torch.where(mask.bool(), tokens, torch.full_like(tokens, pad))
    out = {"tokens": tokens, "attention_mask": mask}
    if "segments" in graph.inputs:  # type: ignore[attr-defined]
        types = graph.nodes["token_type_embeddings"].params.vocab  # type: ignore[attr-defined]  (RoBERTa has one)
        out["segments"] = torch.randint(0, types, (3, 12), generator=gen) * mask
    return out


def _hf_logits(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    kwargs = {"input_ids": inputs["tokens"], "attention_mask": inputs["attention_mask"]}
    if "segments" in inputs:
        kwargs["token_type_ids"] = inputs["segments"]
    with torch.no_grad():
        out = model(**kwargs)
    if getattr(out, "start_logits", None) is not None:
        return torch.stack([out.start_logits, out.end_logits], -1)
    return out.logits


CASES = [(base, kind) for base in TRUNK for kind in ("sequence", "token", "span")]
AUTO = {"sequence": "AutoModelForSequenceClassification", "token": "AutoModelForTokenClassification",
        "span": "AutoModelForQuestionAnswering"}
CLASS = {"sequence": "ForSequenceClassification", "token": "ForTokenClassification", "span": "ForQuestionAnswering"}


@pytest.mark.parametrize(("base", "kind"), CASES, ids=[f"{b.split('-')[0]}-{k}" for b, k in CASES])
def test_task_head_exports_as_its_class(base: str, kind: str, tmp_path: Path) -> None:
    nodes, task_type = _head(base, kind)
    graph, model = _model(tmp_path, base, nodes)
    labels = None if kind == "span" else LABELS
    exported = export_task_model(graph, model, TaskHead(task_type, "out", labels))  # type: ignore[arg-type]
    name = FAMILY[base] + CLASS[kind]
    assert exported.config["architectures"] == [name]
    pad = exported.config.get("pad_token_id", 0)
    exported.config["pad_token_id"] = pad  # the run's tokenizer gives it; GPT-2's classifier finds the last real token by it
    write_hf_dir(tmp_path / "hf", exported)
    hf = getattr(transformers, AUTO[kind]).from_pretrained(tmp_path / "hf").eval()
    assert type(hf).__name__ == name
    if labels:
        assert hf.config.id2label == dict(enumerate(labels)) and hf.config.label2id == {x: i for i, x in enumerate(labels)}
    inputs = _inputs(graph, pad)
    with torch.no_grad():
        ours = model(**inputs)["out"]
    theirs = _hf_logits(hf, inputs)
    real = inputs["attention_mask"].bool()
    if kind != "sequence":  # padded positions are not predictions
        ours, theirs = ours[real], theirs[real]
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_bert_classifier_with_its_own_pooler_layer(tmp_path: Path) -> None:
    """A classification_head with `hidden` on [CLS] is BERT's pooler + classifier; regression sets problem_type."""
    nodes = 'out = { op = "classification_head", in = "first_token", d_model = "d_model", num_labels = 1, hidden = true }'
    graph, model = _model(tmp_path, "bert-base", nodes)
    exported = export_task_model(graph, model, TaskHead("regression", "out"))  # type: ignore[arg-type]
    write_hf_dir(tmp_path / "hf", exported)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    assert hf.config.problem_type == "regression" and hf.config.num_labels == 1
    inputs = _inputs(graph, 0)
    with torch.no_grad():
        ours = model(**inputs)["out"]
    assert torch.allclose(ours, _hf_logits(hf, inputs), atol=1e-5)


REFUSED = {
    # BERT's sentiment demo head: the mean of the tokens, which BertForSequenceClassification does not compute
    "mean-pool": ("bert-base", 'mean = { op = "pool", in = { x = "layer", mask = "attention_mask" }, mode = "mean" }\n'
                  'out = { op = "classification_head", in = "mean", d_model = "d_model", num_labels = 3 }',
                  "classification", r"head node 'out' cannot be exported as BertForSequenceClassification: .*"
                  r"first token's \(\[CLS\]\).*the spec's head is pool \(mode mean, masked\) → classification_head"),
    # RoBERTa's head has its own dense layer; a bare classifier on [CLS] is not RobertaForSequenceClassification
    "roberta-no-dense": ("roberta-base", 'out = { op = "classification_head", in = "first_token", d_model = "d_model", '
                         'num_labels = 3 }', "classification",
                         r"head node 'out' cannot be exported as RobertaForSequenceClassification: .*dense \+ tanh"),
    # GPT-2's score layer has no bias
    "gpt2-bias": ("gpt2-small", 'last = { op = "pool", in = { x = "ln_f", mask = "attention_mask" }, mode = "last" }\n'
                  'out = { op = "classification_head", in = "last", d_model = "d_model", num_labels = 3 }',
                  "classification", r"head node 'out' cannot be exported as GPT2ForSequenceClassification: .*without bias"),
    # a token tagger with a hidden layer
    "token-dense": ("bert-base", 'out = { op = "classification_head", in = "layer", d_model = "d_model", num_labels = 3, '
                    'hidden = true }', "token_classification",
                    r"head node 'out' cannot be exported as BertForTokenClassification: .*one linear layer"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_head_of_another_layout_is_refused_by_name(case: str, tmp_path: Path) -> None:
    base, nodes, task_type, message = REFUSED[case]
    graph, model = _model(tmp_path, base, nodes)
    with pytest.raises(NotRepresentable, match=message):
        export_task_model(graph, model, TaskHead(task_type, "out", LABELS))  # type: ignore[arg-type]
