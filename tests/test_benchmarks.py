"""The benchmark suite runs end to end at toy sizes and writes well-formed results.

Only the shape of the output is checked, never a timing: benchmarks measure
speed, tests measure behaviour.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` lives beside the packages, uninstalled

from benchmarks.__main__ import run  # noqa: E402


def _timing(t: dict) -> None:
    assert set(t) == {"median", "low", "high", "reps", "faults", "samples"}
    assert 0 < t["low"] <= t["median"] <= t["high"] and math.isfinite(t["high"]) and t["reps"] == len(t["samples"]) >= 1


def test_tiny_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    results = run("tiny", "cpu", tmp_path, say=lambda line: None)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    markdown = (tmp_path / "results.md").read_text()

    assert [r["task"] for r in results["train"]] == ["gpt-clm", "bert-mlm", "t5-span"]
    for r in results["train"]:
        assert {"transformers eager", "transformers sdpa", "specc"} <= set(r["variants"])
        for v in r["variants"].values():
            _timing(v["time"])
            assert v["peak_bytes"] > 0 and v["tokens_per_s"] > 0
        assert r["loss_rel_diff"] < 1e-4  # one set of weights, one batch: the same loss everywhere
        assert 0 <= r["outside"]["fraction"] < 1
    assert "hand-written" in results["train"][0]["variants"] and "specc, plain CE" in results["train"][0]["variants"]
    for r in results["forward"]:
        assert r["max_abs_diff"] < 1e-4
    assert results["generate"][0]["same_tokens"] is True
    build = results["build"][0]
    assert set(build["stages"]) == {"parse", "validate", "graph", "modules", "init"}
    assert results["front"]["layers"] == 24 and results["front"]["warm"]["median"] > 0
    assert {"adamw", "gelu", "checkpointing"} <= set(results["levers"])
    ckpt = results["levers"]["checkpointing"]
    assert ckpt["recomputed"]["peak_bytes"] < ckpt["kept"]["peak_bytes"]  # memory, not time: deterministic
    assert [row["value"] for row in results["scaling"]] == [1, 2]

    for title in ("Training step", "Inference forward", "Greedy generation", "Build time", "Levers", "Scaling"):
        assert f"### {title}" in markdown
    assert "| activation checkpointing" in markdown and "| GELU: `gelu_tanh`" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| gpt-clm (tiny) |") and line.count("|") == 9]
    assert len(table_rows) == len(results["train"][0]["variants"]) + len(results["forward"][0]["variants"])


def test_the_gpu_script_runs_dry_on_the_cpu(tmp_path: Path) -> None:
    """The prepared GPU check at a toy size on the CPU: every variant runs and the report is well formed."""
    from benchmarks import gpu

    assert gpu.main(["--dry-run", "--no-compile", "--batch", "2", "--reps", "2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu.json").read_text())
    variants = result["variants"]
    assert set(variants) == {"transformers sdpa", "specc", "specc, activation checkpointing"}
    for v in variants.values():
        _timing(v["time"])
        assert v["tokens_per_s"] > 0 and v["peak_gib"] > 0 and 0 < v["mfu"]
    losses = [v["first_loss"] for v in variants.values()]
    assert max(losses) - min(losses) < 1e-4 * abs(losses[0])  # one set of weights, one batch
    assert "| specc, activation checkpointing |" in (tmp_path / "gpu.md").read_text()


@pytest.mark.slow  # launches a child per benchmark row
def test_the_allocator_child_times_every_as_launched_row() -> None:
    """One child process (the lever runs 3 libraries x 2 malloc modes x N rounds of these) and the table row it feeds."""
    import subprocess

    from benchmarks.alloc_child import BENCHES
    from benchmarks.report import as_launched, levers

    cmd = [sys.executable, "-m", "benchmarks.alloc_child", "tuned", "specc", "--tiny"]
    line = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent).stdout)
    assert line["tuned"] in (True, False) and set(BENCHES) <= set(line)
    assert all(line[bench]["s"] > 0 and line[bench]["faults"] >= 0 for bench in BENCHES)
    timed = {bench: {lib: line[bench] for lib in ("specc", "transformers sdpa", "hand-written")} for bench in BENCHES}
    rows = [r for r in as_launched({"default": timed, "tuned": timed}) if r.startswith("| gpt ") or r.startswith("| bert ")]
    assert [r.split(" | ")[0] for r in rows] == ["| gpt train", "| gpt forward", "| bert forward"]
    assert sum(r.startswith("| malloc settings") for r in levers({"allocator": {"default": timed, "tuned": timed}}, [])) == 9


@pytest.mark.parametrize("kind, task", [("forward", "bert-mlm"), ("step", "gpt-clm")])
def test_the_profile_groups_every_variants_operators(kind: str, task: str) -> None:
    from benchmarks.models import TINY
    from benchmarks.profile import callables, grouped, main as profile, measure

    text = profile([kind, task, "--tiny", "--calls", "1", "--top", "3"])
    header = next(line for line in text.splitlines() if line.startswith("| group |"))
    assert header.count(" ms |") == 4 and "specc ms" in header and "hand-written ms" in header
    assert "| **total** |" in text and text.count("top operators") == 4
    fns = callables(kind, task, TINY)
    assert all(grouped(measure(fn, 1, grad=kind == "step"))["matmul"] > 0 for fn in fns.values())  # every variant's matmuls are found


def test_peak_bytes_counts_what_the_step_creates_not_the_weights_it_reads() -> None:
    """A linear reads its weight through a view (W.t()) and an optimizer updates it in place: neither is memory
    the step allocates. Only the product (4 x 256 floats) is."""
    import torch

    from benchmarks.harness import peak_bytes

    weight, x = torch.randn(256, 1024), torch.randn(4, 1024)

    def step() -> None:
        y = torch.nn.functional.linear(x, weight)
        weight.add_(0.0)
        del y

    assert peak_bytes(step) == 4 * 256 * 4
