"""An override a run cannot use is refused (E087) with the key that would do what was asked."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from helpers import SPECS, TINY
from specc.cli import main
from specc.diagnostics import SpecError
from specc.frontend import parse
from specc.graph import build_graph
from specc.graph.subgraph import subgraph
from specc.schema import validate
from specc.runtime.train.overrides import check_finetune_sets, check_pretrain_sets


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_train_steps_on_a_finetuning_run_is_refused_with_the_tasks_key(tmp_path: Path) -> None:
    """The issue's case: it used to change the inherited pretraining [train] and do nothing."""
    out = tmp_path / "out"
    code, _, err = run("finetune", str(SPECS / "gpt-tiny-translate.toml"), "--out", str(out), "--set", 'tasks.translate.from=""',
                       "--set", "train.steps=2500", *[a for s in TINY for a in ("--set", s)])
    assert code == 1 and not out.exists()
    assert err.splitlines() == [
        "--set train.steps=2500: error[E087]: this override cannot affect the run: the task 'translate' trains with "
        "tasks.translate.train.steps",
        "  = hint: --set tasks.translate.train.steps=2500"]


@pytest.fixture(scope="module")
def sentiment_graph():  # type: ignore[no-untyped-def]
    """What fine-tuning bert-tiny-tasks' 'acceptability' compiles: the part of the graph its head reads."""
    graph = build_graph(validate(parse(SPECS / "bert-tiny-tasks.toml", TINY)))
    return subgraph(graph, ["acceptability_logits"])


def _refused(graph, sets: list[str], trains_tokenizer: bool = False, from_given: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    try:
        check_finetune_sets(sets, "acceptability", graph, trains_tokenizer, from_given)
    except SpecError as err:
        assert all(d.code == "E087" and d.span is not None for d in err.diagnostics)
        return [d.span.file.removeprefix("--set ") + ": " + d.message.removeprefix("this override cannot affect the run: ")
                for d in err.diagnostics if d.span is not None]
    return []


def test_every_section_a_finetuning_run_ignores_is_refused(sentiment_graph) -> None:  # type: ignore[no-untyped-def]
    assert _refused(sentiment_graph, ["objective.mlm.weight=2", "data.max_documents=5", "tokenizer.vocab_size=512",
                                      "tasks.pairs.train.steps=3", "model.nodes.mlm_head.dropout=0.2",
                                      "model.outputs.mlm_logits=pooler", "train=3"]) == [
        "objective.mlm.weight=2: a fine-tuning run has no pretraining objective (the task 'acceptability' trains with its own loss)",
        "data.max_documents=5: the task 'acceptability' reads its examples from tasks.acceptability.data, and [data] only "
        "feeds a tokenizer trained from scratch; this run takes its tokenizer from the pretrained run",
        "tokenizer.vocab_size=512: this run takes its tokenizer from the pretrained run; [tokenizer] applies only without one",
        "tasks.pairs.train.steps=3: this run fine-tunes the task 'acceptability', not 'pairs'",
        "model.nodes.mlm_head.dropout=0.2: node 'mlm_head' is not part of what the task 'acceptability' runs (its head "
        "does not read it)",
        "model.outputs.mlm_logits=pooler: the task 'acceptability' reads only the output 'acceptability_logits'",
        "train=3: the task 'acceptability' trains with tasks.acceptability.train"]
    assert _refused(sentiment_graph, ["tasks.acceptability.from=runs/x"], from_given=True) == [
        "tasks.acceptability.from=runs/x: --from RUN names the pretrained run; tasks.acceptability.from is only the "
        "default when --from is not given"]


def test_overrides_the_finetuning_run_uses_are_accepted(sentiment_graph) -> None:  # type: ignore[no-untyped-def]
    assert _refused(sentiment_graph, ["params.d_model=64", "tasks.acceptability.train.steps=5", "tasks.acceptability.from=x",
                                      "model.nodes.acceptability_head.dropout=0.0", "model.nodes.layer.repeat=2",
                                      "blocks.encoder_layer.nodes.attn.dropout=0.0"]) == []
    # without a pretrained run the tokenizer is trained from [tokenizer] on [data]: both count then
    assert _refused(sentiment_graph, ["data.max_documents=5", "tokenizer.vocab_size=512"], trains_tokenizer=True) == []


def test_a_pretraining_run_refuses_task_overrides(tmp_path: Path) -> None:
    check_pretrain_sets(["train.steps=3", "objective.mlm.weight=1"])
    with pytest.raises(SpecError) as info:
        check_pretrain_sets(["tasks.sentiment.train.steps=3"])
    (d,) = info.value.diagnostics
    assert d.code == "E087" and "pretraining runs no task" in d.message
    code, _, err = run("train", str(SPECS / "bert-tiny-sentiment.toml"), "--out", str(tmp_path / "out"),
                       "--set", "tasks.sentiment.train.steps=3")
    assert code == 1 and "error[E087]" in err and not (tmp_path / "out").exists()
