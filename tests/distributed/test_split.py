"""One process's share of a global batch, and the one-process path of the distributed helpers (no processes)."""

from __future__ import annotations

import pytest
import torch

from specc.runtime.distributed import BatchSplit, Ranks, any_rank, from_rank0, ranks, split_batch, sum_over_ranks
from specc.runtime.errors import UserError
from specc.runtime.batch import LossSums
from specc.runtime.train.parallel import _Forward, _keyed_by_index, _keyed_by_name, _leaves_parameters_out


@pytest.mark.parametrize("batch, accum, world, micro, per_rank_accum", [
    (8, 1, 1, 8, 1),     # one process: as declared
    (4, 2, 1, 4, 2),
    (8, 1, 2, 4, 1),     # 2 x 4 = 8
    (16, 4, 2, 16, 2),   # each process's 32 samples in 2 micro-batches of at most 16
    (16, 4, 8, 8, 1),
    (6, 4, 4, 6, 1),     # 24 samples: 6 each
    (5, 3, 3, 5, 1),
    (4, 3, 2, 3, 2),     # 12 samples: 6 each, micro-batches of at most 4 that divide 6: 3 x 2
])
def test_a_global_batch_is_shared_evenly(batch: int, accum: int, world: int, micro: int, per_rank_accum: int) -> None:
    split = split_batch(batch, accum, Ranks(0, world, 0))
    assert (split.micro, split.accum, split.global_batch) == (micro, per_rank_accum, batch * accum)
    assert split.micro <= batch and split.micro * split.accum * world == batch * accum


def test_every_sample_of_a_step_is_read_once() -> None:
    """Process r, micro-batch m reads its own slice of the step's consecutive samples."""
    world = 4
    read: list[int] = []
    for r in range(world):
        split = split_batch(4, 3, Ranks(r, world, r))
        for m in range(split.accum):
            first = split.first(100, m)
            read += range(first, first + split.micro)
    assert sorted(read) == list(range(100, 112))


def test_one_process_reads_as_before() -> None:
    """Micro-batch m of a step at position p starts at p + m × batch_size (the resumable data position)."""
    split = split_batch(4, 2, Ranks())
    assert [split.first(40, m) for m in range(2)] == [40, 44]
    assert split == BatchSplit(8, 4, 2, 0)


def test_an_uneven_global_batch_is_refused() -> None:
    with pytest.raises(UserError, match=r"batch_size × grad_accum = 6 × 1 = 6 samples per step \(the global batch\) "
                                        r"cannot be split evenly among 4 processes; make it a multiple of 4 \(e\.g\. 8\)"):
        split_batch(6, 1, Ranks(0, 4, 0))


def test_without_a_process_group_the_helpers_are_the_identity() -> None:
    assert ranks() == Ranks(0, 1, 0) and ranks().main
    sums = LossSums({"lm": 3.0}, {"lm": 2})
    assert sum_over_ranks(sums) is sums
    assert any_rank(True) and not any_rank(False)
    assert from_rank0({"x": 1}) == {"x": 1}


def test_optimizer_state_keys_round_trip_between_names_and_positions() -> None:
    """FSDP's gathered optimizer state (keyed by parameter name) is stored as one process keys it."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    groups: list[dict] = [{"params": [model[0].weight, model[1].weight]},
                          {"params": [model[0].bias, model[1].bias], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=0.1)
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    by_index = opt.state_dict()
    by_name = _keyed_by_name(by_index, opt, model)
    assert [g["params"] for g in by_name["param_groups"]] == [["0.weight", "1.weight"], ["0.bias", "1.bias"]]
    assert torch.equal(by_name["state"]["1.bias"]["exp_avg"], by_index["state"][3]["exp_avg"])
    back = _keyed_by_index(by_name)
    assert [g["params"] for g in back["param_groups"]] == [[0, 1], [2, 3]]
    assert all(torch.equal(back["state"][i][k], by_index["state"][i][k]) for i in by_index["state"] for k in by_index["state"][i])


class _Work:
    """A workload's loss, for `_Forward`: the sum of the model's output."""

    def loss(self, outputs: dict[str, torch.Tensor], batch: object, sums: LossSums) -> torch.Tensor:
        return outputs["y"].sum()


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = torch.nn.Linear(3, 3)
        self.pooler = torch.nn.Linear(3, 3)  # an output no loss reads

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y": torch.nn.functional.dropout(self.used(x), 0.5), "pooled": self.pooler(x)}


class _Batch:
    inputs = {"x": torch.ones(2, 3)}


@pytest.mark.parametrize("frozen", [False, True])
def test_parameters_a_loss_leaves_out_are_found_without_a_trace(frozen: bool) -> None:
    """DDP must look for unused parameters every step only if there are any; the probe leaves no
    gradients and no change in the random stream behind."""
    model = _Model()
    if frozen:
        model.pooler.requires_grad_(False)  # frozen parameters are not DDP's concern
    before = torch.get_rng_state()
    assert _leaves_parameters_out(_Forward(model, model, _Work()), _Batch(), torch.device("cpu")) is not frozen  # type: ignore[arg-type]
    assert torch.equal(torch.get_rng_state(), before)
    assert all(p.grad is None for p in model.parameters())
