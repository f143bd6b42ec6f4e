"""Starting from a checkpoint: what loads, what is new, what is unused, what may not differ; how each parameter learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import SPECS, TINY
from specc.canonical import canonical_json
from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph import build_graph
from specc.graph.subgraph import subgraph
from specc.schema import validate
from specc.runtime.runs import checkpoint
from specc.runtime.runs.checkpoint import TrainState
from specc.runtime.errors import UserError
from specc.runtime.train.finetune import task_setup
from specc.runtime.train.optim import make_optimizer, param_groups
from specc.runtime.config import TrainConfig
from specc.runtime.runs.transfer import inspect_source, load_matching, lr_scales, matches, pattern


def _pretrained(tmp_path: Path, spec: str = "bert-tiny.toml", sets: list[str] = TINY) -> Path:
    """A checkpoint of `spec` as `specc train` writes it (weights, spec, tokenizer), without training."""
    model_spec = validate(parse(SPECS / spec, sets))
    model = compile_model(build_graph(model_spec))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # distinguishable from a fresh initialisation
    opt = torch.optim.AdamW(model.parameters())
    return checkpoint.save(tmp_path / "pre", TrainState(step=1), model, opt, canonical_json(model_spec), "{}", keep=1)


def test_patterns_match_names_and_layer_ranges() -> None:
    assert matches("layer.1.attention.qkv.weight", ["layer.0:2.*"])
    assert not matches("layer.2.attention.qkv.weight", ["layer.0:2.*"])
    assert matches("word_embeddings.weight", ["word_*"]) and not matches("position_embeddings.weight", ["word_*"])
    assert pattern("a?c").fullmatch("abc") and not pattern("a.c").fullmatch("abc")  # a dot is a dot


def test_subgraph_keeps_only_what_the_head_needs() -> None:
    full = build_graph(validate(parse(SPECS / "bert-tiny-sentiment.toml", TINY)))
    sub = subgraph(full, ["sentiment_logits"])
    assert "mlm_head" in full.nodes and not {"mlm_head", "nsp_head", "pooler"} & set(sub.nodes)
    assert "mlm_select" not in sub.inputs and list(sub.outputs) == ["sentiment_logits"]
    model = compile_model(sub, "meta", init=False)
    assert {n: tuple(p.shape) for n, p in model.named_parameters()} == sub.parameter_names()


def test_report_of_a_pretrained_bert_under_a_sentiment_head(tmp_path: Path) -> None:
    ckpt = _pretrained(tmp_path)
    setup = task_setup(validate(parse(SPECS / "bert-tiny-sentiment.toml", TINY)), SPECS, None)
    report = inspect_source(ckpt, setup.graph, [])
    assert sorted(report.new) == ["sentiment_head.out.bias", "sentiment_head.out.weight"]
    assert {n.split(".")[0] for n in report.unused} == {"mlm_head", "nsp_head", "pooler"}  # the head reads the mean
    assert "word_embeddings.weight" in report.loaded and "layer.0.attention.qkv.weight" in report.loaded
    assert not report.mismatched
    text = "\n".join(report.lines())
    assert "newly initialised 2" in text and "mlm_head.* (" in text
    model = compile_model(setup.graph)
    fresh = model.get_parameter("sentiment_head.out.weight").clone()
    load_matching(model, report)
    stored = compile_model(build_graph(validate(parse(SPECS / "bert-tiny.toml", TINY))))
    checkpoint.load_weights(ckpt, stored)
    assert torch.equal(model.get_parameter("layer.0.attention.qkv.weight"), stored.get_parameter("layer.0.attention.qkv.weight"))
    assert torch.equal(model.get_parameter("sentiment_head.out.weight"), fresh)  # new tensors keep their initialisation


def test_an_undeclared_shape_mismatch_is_an_error_and_a_declared_one_is_reinitialised(tmp_path: Path) -> None:
    ckpt = _pretrained(tmp_path, "bert-tiny-sentiment.toml")  # a fine-tuned 2-label run
    sets = [*TINY, "model.nodes.sentiment_head.num_labels=3"]
    graph = task_setup(validate(parse(SPECS / "bert-tiny-sentiment.toml", sets)), SPECS, None).graph
    with pytest.raises(UserError, match=r"(?s)2 tensor\(s\) differ in shape:\n  sentiment_head.out.weight: model \[3, 32\], "
                                        r"checkpoint \[2, 32\].*reinit"):
        inspect_source(ckpt, graph, [])
    report = inspect_source(ckpt, graph, ["sentiment_head.*"])
    assert [m[0] for m in report.mismatched] == ["sentiment_head.out.weight", "sentiment_head.out.bias"]
    assert set(report.new) == {"sentiment_head.out.weight", "sentiment_head.out.bias"}
    wider = task_setup(validate(parse(SPECS / "bert-tiny-sentiment.toml", [*TINY, "params.d_model=64"])), SPECS, None).graph
    with pytest.raises(UserError, match="word_embeddings.weight: model \\[2048, 64\\], checkpoint \\[2048, 32\\]"):
        inspect_source(ckpt, wider, ["sentiment_head.*"])


def test_freezing_layer_decay_and_head_learning_rate() -> None:
    graph = task_setup(validate(parse(SPECS / "bert-tiny-sentiment.toml", ["params.layers=3", "params.d_model=32",
                                                                             "params.heads=2"])), SPECS, None).graph
    new = ["sentiment_head.out.weight", "sentiment_head.out.bias"]
    scales = lr_scales(graph, 1e-3, ["word_embeddings.*", "layer.0:1.*"], 0.5, 4e-3, new)
    assert scales["word_embeddings.weight"] == 0 and scales["layer.0.attention.qkv.weight"] == 0
    # 3 layers: embeddings depth 0, layer i depth i + 1, after the stack 4 (here only the new head, at head_lr)
    assert scales["position_embeddings.weight"] == pytest.approx(0.5 ** 4)
    assert scales["layer.1.attention.qkv.weight"] == pytest.approx(0.5 ** 2)
    assert scales["layer.2.attention.qkv.weight"] == pytest.approx(0.5)
    assert scales["sentiment_head.out.bias"] == pytest.approx(4.0)  # new: the head learning rate, not the decay
    model = compile_model(graph)
    groups = param_groups(model, TrainConfig(), scales)
    assert not model.get_parameter("word_embeddings.weight").requires_grad
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert id(model.get_parameter("word_embeddings.weight")) not in in_groups
    assert {g["lr_scale"] for g in groups} == {0.5 ** 4, 0.25, 0.5, 4.0}
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)
    make_optimizer(model, TrainConfig(), scales)  # the fused AdamW accepts the groups
