"""Every spec in specs/ parses, shrinks, compiles and runs forward and backward on CPU.

The list is globbed at collection time, so a new spec file is tested without
touching this file. Full-size specs are shrunk with the same overrides
`specc smoke` uses (fewer layers, narrower widths, same structure).
"""

from __future__ import annotations

import math

import contextlib
import io
from pathlib import Path

import pytest
import torch

import specc
from specc.cli import main
from specc.frontend import apply_cli_sets
from specc.shrink import shrink_overrides
from specc.smoke import example_inputs

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").iterdir() if p.is_file() and p.suffix not in {".md", ".txt"})
MAX_SHRUNK_PARAMS = 2_000_000  # keeps the whole parametrised run to a few seconds

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors run fastest on one thread


def test_there_are_specs() -> None:
    assert len(SPECS) >= 5


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_spec_compiles_and_trains_a_step(path: Path) -> None:
    raw = specc.parse(path)
    sets = shrink_overrides(raw)
    graph = specc.build_graph(specc.validate(apply_cli_sets(raw, sets)))
    assert graph.param_count() <= MAX_SHRUNK_PARAMS, f"shrinking left {graph.param_count():,} parameters"
    torch.manual_seed(0)
    model = specc.compile_model(graph)
    adapters = sum(math.prod(s) for s in graph.adapters.parameter_names().values()) if graph.adapters else 0
    assert sum(p.numel() for p in model.parameters()) == graph.param_count() + adapters  # LoRA's are not the architecture's
    model.train()
    outputs = model(**example_inputs(graph, batch=2, seq=8))
    assert set(outputs) == set(graph.outputs)
    floats = [v for v in outputs.values() if v is not None and v.is_floating_point()]
    assert floats, "no floating-point output to train"
    for name, value in outputs.items():
        assert value is not None and torch.isfinite(value.float()).all(), name
    loss = sum(v.float().pow(2).mean() for v in floats)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads, "no parameter got a gradient"
    for name, grad in grads.items():
        assert torch.isfinite(grad).all(), f"non-finite gradient in {name}"


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


SPEC = str(ROOT / "specs" / "gpt2-small.toml")


def test_cli_smoke_shrinks_and_runs() -> None:
    code, out, err = _cli("smoke", SPEC, "--seq", "8")
    assert (code, err) == (0, "")
    assert out.startswith("shrunk: ") and "layers=2" in out.splitlines()[0]
    assert "logits: [2, 8, " in out and "tensors got gradients" in out


def test_cli_summary_totals_match_the_graph() -> None:
    code, out, err = _cli("summary", SPEC, "--set", "params.layers=2")
    assert (code, err) == (0, "")
    graph = specc.load_graph(SPEC, ["params.layers=2"])
    total = [line for line in out.splitlines() if line.startswith("total")]
    assert len(total) == 1 and f"{graph.param_count():,}" in total[0]
    assert any(line.startswith("h ") and "× 2" in line for line in out.splitlines())


def test_cli_compile_prints_the_module_tree() -> None:
    code, out, err = _cli("compile", SPEC, "--set", "params.layers=1", "--set", "params.vocab=1000")
    assert (code, err) == (0, "")
    assert "SpecModel(" in out and "(attn): Attention(" in out
    graph = specc.load_graph(SPEC, ["params.layers=1", "params.vocab=1000"])
    assert f"{graph.param_count():,} parameters" in out


def test_cli_check_is_silent_on_success() -> None:
    assert _cli("check", SPEC) == (0, "", "")


def test_cli_reports_a_missing_file_without_traceback() -> None:
    code, out, err = _cli("check", "no/such/spec.toml")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith("no/such/spec.toml: error[E002]: spec file not found")


def test_cli_compile_of_an_impossible_size_is_a_diagnostic() -> None:
    """Far more memory than any address space: a diagnostic, not a traceback (nothing is filled first)."""
    code, out, err = _cli("compile", SPEC, "--set", "params.vocab=100000000000000")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith(f"{SPEC}: error[E050]: cannot allocate the model's parameters (")


@pytest.mark.parametrize("argv", [["smoke", SPEC, "--batch", "0"], ["smoke", SPEC, "--seq", "-3"],
                                  ["summary", SPEC, "--context", "x"]])
def test_cli_refuses_bad_sizes_as_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _cli(*argv)
    assert info.value.code == 2


@pytest.mark.parametrize("sets", [["params.d_model=1000000000000", "params.heads=1"],
                                  # one dimension past 2**63: heads x head_dim (semantic fuzzing, issue 16)
                                  ["params.layers=1", "blocks.decoder_layer.nodes.attn.head_dim=9223372036854775807"]])
def test_cli_compile_of_a_tensor_too_large_to_exist_is_a_diagnostic(sets: list[str]) -> None:
    """A weight of 10**12 x 4 * 10**12 elements overflows even on the meta device (found by fuzzing)."""
    code, out, err = _cli("compile", SPEC, *(arg for s in sets for arg in ("--set", s)))
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith(f"{SPEC}: error[E050]: a parameter of the model has more elements than a tensor can hold")
