"""An objective asks only for what it uses, and a missing input or output comes with the line to add (E061)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from specc import load_graph
from specc.cli import main
from specc.compiler import compile_model
from specc.runtime.objectives import Batch, resolve_objectives
from specc.runtime.data.tokenizer import Specials

HERE = Path(__file__).resolve().parent.parent / "objective_specs"
ENCODER = HERE / "mlm-without-segments.spec"
SPECIALS = Specials(pad=0, eos=1, cls=2, sep=3, mask=4, unk=None, sentinels=())


def test_mlm_without_nsp_needs_no_segments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ENCODER)]) == 0, capsys.readouterr().err


def test_segments_are_fed_only_to_a_model_that_declares_them() -> None:
    graph = load_graph(ENCODER)
    objectives = resolve_objectives(graph.spec, graph)
    assert objectives.unfed == {"segments"}
    tokens = torch.randint(5, 500, (2, 16))
    batch = Batch({"tokens": tokens, "segments": torch.zeros_like(tokens)})  # what the "bert" layout makes
    objectives.prepare(batch, np.random.default_rng(0), SPECIALS, 512)
    assert set(batch.inputs) == {"tokens", "mlm_select"}
    out = compile_model(graph)(**batch.inputs)  # the model takes the batch as it is
    assert out["mlm_logits"].shape == (int(batch.inputs["mlm_select"].sum()), 512)


def _drop_select(tmp_path: Path, suffix: str) -> Path:
    text = ENCODER.read_text().replace("  input mlm_select: bool[batch, seq]?\n", "").replace("select: mlm_select, ", "")
    dsl = tmp_path / "nosel.spec"
    dsl.write_text(text)
    if suffix == ".spec":
        return dsl
    assert main(["convert", str(dsl), "-o", str(tmp_path / "nosel.toml")]) == 0
    return tmp_path / "nosel.toml"


@pytest.mark.parametrize("suffix,line", [
    (".spec", "  = hint: add to model { ... }: `input mlm_select: bool[batch, seq]?`, and make it the MLM head's "
              "select input"),
    (".toml", '  = hint: add to [model.inputs]: `mlm_select = "bool[batch, seq]?"`, and make it the MLM head\'s '
              "select input"),
])
def test_a_missing_input_hint_is_the_line_to_add(capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str,
                                                 line: str) -> None:
    spec = _drop_select(tmp_path, suffix)
    capsys.readouterr()
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "error[E061]: objective 'mlm' feeds model input 'mlm_select', which the model does not declare" in err[0]
    assert err[-1] == line


def test_a_missing_output_hint_names_the_head_node(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "noout.spec"
    spec.write_text(ENCODER.read_text().replace("output mlm_logits = mlm", "output scores = mlm"))
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "reads model output 'mlm_logits', which the model does not declare" in err[0]
    assert err[-1] == "  = hint: add to model { ... }: `output mlm_logits = mlm`"
