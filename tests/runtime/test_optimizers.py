"""[train] optimizer: AdamW (default, fused), Adafactor, SGD with momentum; each one's state saves and resumes
exactly: in process (a state dict through checkpoint's file format) and, slow, a killed and resumed run."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
import torch

from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph import build_graph
from specc.runtime.runs import checkpoint
from specc.runtime.config import TrainConfig
from specc.runtime.train.optim import make_optimizer
from specc.schema import validate
from runtools import GPT_TINY, Run, metrics
from test_resume import assert_identical, between_checkpoints, rng, train  # noqa: F401  (rng: the fixture)

KINDS = {"adamw": torch.optim.AdamW, "adafactor": torch.optim.Adafactor, "sgd": torch.optim.SGD}


def _model() -> torch.nn.Module:
    graph = build_graph(validate(parse(GPT_TINY, ["params.layers=1", "params.d_model=32", "params.heads=2",
                                                  "params.vocab=64", "params.dropout=0.0"])))
    return compile_model(graph)


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, first: int, n: int) -> None:
    for i in range(first, first + n):
        tokens = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(i))
        logits = model(tokens=tokens)["logits"]
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens.flatten()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_optimizer_resumes_from_its_saved_state_exactly(kind: str, tmp_path: Path) -> None:
    cfg = TrainConfig(optimizer=kind, lr=1e-2, momentum=0.8)  # type: ignore[arg-type]
    straight = _model()
    opt = make_optimizer(straight, cfg)
    assert type(opt) is KINDS[kind]
    _steps(straight, opt, 0, 4)

    model = _model()
    opt = make_optimizer(model, cfg)
    _steps(model, opt, 0, 2)
    torch.save(opt.state_dict(), tmp_path / "optimizer.pt")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    resumed = _model()
    resumed.load_state_dict(weights)
    opt = make_optimizer(resumed, cfg)
    checkpoint.apply_optimizer_state(tmp_path, opt, checkpoint.load_optimizer_state(tmp_path))
    assert opt.state_dict()["state"].keys() == torch.load(tmp_path / "optimizer.pt", weights_only=True)["state"].keys()
    _steps(resumed, opt, 2, 2)
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), f"{kind}: {name}"
    if kind == "sgd":
        assert all("momentum_buffer" in s for s in opt.state.values())
    if kind == "adafactor":  # factored second moments: a row and a column vector per matrix, not a full copy
        state = opt.state[resumed.get_parameter("h.0.attn.qkv.weight")]
        assert state["row_var"].numel() + state["col_var"].numel() < resumed.get_parameter("h.0.attn.qkv.weight").numel()


@pytest.mark.slow  # three tiny runs each: about a minute per optimizer on a busy 2-core machine
@pytest.mark.parametrize("kind", ["adafactor", "sgd"])
def test_sigkill_then_resume_is_bit_identical(kind: str, cli: Run, tmp_path: Path, rng: random.Random) -> None:  # noqa: F811
    reference = tmp_path / "reference"
    done = train(cli, reference, f"train.optimizer={kind}")
    assert done.returncode == 0, done.stderr
    step = between_checkpoints(rng, 7, 30)
    out = tmp_path / "run"
    done = train(cli, out, f"train.optimizer={kind}", kill=["--kill-at", str(step)])
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert metrics(out)[-1]["step"] == step
    done = train(cli, out, f"train.optimizer={kind}", resume=True)
    assert done.returncode == 0, done.stderr
    assert_identical(out, reference, f"{kind}: SIGKILL after step {step}")


def test_declared_lr_scale_multiplies_the_named_parameters_rate() -> None:
    """[train] lr_scale: a pattern's multiplier reaches its parameters' group (the trainer sets each group's lr to
    the schedule's times `lr_scale`), composes with a run's own multipliers, and leaves the rest at 1."""
    model = _model()
    cfg = TrainConfig(lr_scale={"wpe.*": 30.0, "h.0.*": 2.0})
    names = dict(model.named_parameters())
    assert "wpe.weight" in names
    scale_of = {id(p): g["lr_scale"] for g in make_optimizer(model, cfg).param_groups for p in g["params"]}
    assert scale_of[id(names["wpe.weight"])] == 30.0
    assert all(scale_of[id(p)] == 2.0 for n, p in names.items() if n.startswith("h.0."))
    assert scale_of[id(names["ln_f.weight"])] == 1.0
    frozen = {"h.0.attn.qkv.weight": 0.0, "wpe.weight": 0.5}
    scale_of = {id(p): g["lr_scale"] for g in make_optimizer(model, cfg, frozen).param_groups for p in g["params"]}
    assert scale_of[id(names["wpe.weight"])] == 15.0
    assert id(names["h.0.attn.qkv.weight"]) not in scale_of  # still frozen
