"""The model as the training loop drives it, on one process or many: `Engine`.

One micro-batch's forward *and loss* are a single module call (`Engine.__call__`), so that
data parallelism sees the loss as the model's output: a vocabulary head deferred to the
loss, and parameters that no loss reads, are then both accounted for. On several
processes the engine is

- ``parallel = "ddp"`` (default): `DistributedDataParallel` over the engine; gradients are
  averaged across processes on the last micro-batch of each step only (`no_sync` before);
  one forward and backward before training tell whether a loss leaves parameters out;
- ``parallel = "fsdp"``: FSDP2 (`torch.distributed.fsdp.fully_shard`) on every layer of each
  repeated block, then on the whole model; with ``precision = "bf16"`` on GPU, parameters
  are gathered in bf16 and gradients reduced in fp32 (`MixedPrecisionPolicy`).

Checkpoints stay one format whatever the parallelism, so that a run on N processes
resumes on M: the full model in ``model.safetensors`` and the full optimizer state keyed
as a one-process optimizer keys it (FSDP's shards are gathered to rank 0 for the save,
and cut again from the full state on load), plus each process's RNG state.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from specc.compiler import recompute_activations, repeated_layers
from specc.runtime.runs import checkpoint
from specc.runtime import distributed
from specc.runtime.config import TrainConfig
from specc.runtime.batch import Batch, LossSums
from specc.runtime.train.workload import Workload


class _Forward(nn.Module):
    """Forward and loss of one micro-batch (the module DDP wraps)."""

    def __init__(self, model: nn.Module, fn: Callable[..., Mapping[str, torch.Tensor]], work: Workload):
        super().__init__()
        self.model = model
        self._fn = (fn,)  # the model or its torch.compile'd form; a tuple, so not registered twice
        self._work = work

    def forward(self, batch: Batch, sums: LossSums) -> torch.Tensor:
        outputs = self._fn[0](**batch.inputs)
        return self._work.loss(outputs, batch, sums)


class Engine:
    """`model` ready to train on this process: call it with a micro-batch for its loss."""

    def __init__(self, model: nn.Module, work: Workload, cfg: TrainConfig, device: torch.device,
                 sample: Callable[[], Batch]):
        """`sample` gives a micro-batch of this process (for DDP to learn which parameters a loss leaves out)."""
        self.model = model  # the plain module: parameter names, evaluation, weights
        self.me = distributed.ranks()
        self.kind = cfg.parallel if distributed.joined() else "single"
        recompute_activations(model, cfg.activation_checkpointing)
        if self.kind == "fsdp":
            _fully_shard(model, cfg, device)
        fn: Any = torch.compile(model) if cfg.compile else model
        self.module: nn.Module = _Forward(model, fn, work)
        if self.kind == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            # Parameters no loss reads (a pooler an objective ignores) would stall the reduction, unless DDP
            # looks for them after every forward, which it then must. Buffers are constants of the spec
            # (no batch statistics), never re-broadcast.
            unused = distributed.any_rank(_leaves_parameters_out(self.module, sample(), device))
            self.module = DistributedDataParallel(self.module, find_unused_parameters=unused, forward_sync_buffers=False)

    def __call__(self, batch: Batch, sums: LossSums) -> torch.Tensor:
        return self.module(batch, sums)

    @contextlib.contextmanager
    def micro_batch(self, last: bool) -> Iterator[None]:
        """Around one micro-batch's forward and backward: gradients are synchronised on the last only."""
        if self.kind == "ddp" and not last:
            with self.module.no_sync():  # type: ignore[operator]
                yield
            return
        if self.kind == "fsdp":
            self.model.set_requires_gradient_sync(last)  # type: ignore[operator]
        yield

    def clip(self, max_norm: float) -> float:
        """Clip the gradients' global norm (all shards together); return the norm before clipping."""
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        full = getattr(norm, "full_tensor", None)  # a DTensor under FSDP
        return float(full() if full is not None else norm)

    def seed(self, seed: int, step: int) -> None:
        """Give every process but rank 0 its own random stream (dropout), derived from the seed: rank 0
        keeps the one-process stream."""
        if self.me.rank:
            torch.manual_seed(_derived_seed(seed, self.me.rank, step))

    # -- checkpoints ------------------------------------------------------------------
    def save(self, run_dir: Path, state: checkpoint.TrainState, optimizer: torch.optim.Optimizer, spec_json: str,
             tokenizer_json: str, keep: int, extras: Mapping[str, str], replica: Callable[[], nn.Module],
             only: Sequence[str] | None = None) -> None:
        """A checkpoint of the whole job, written by rank 0 (every process takes part in gathering it).
        `replica` makes a plain CPU model to hold gathered weights (FSDP only)."""
        rngs = distributed.gather_to_rank0(_rng_state())
        model: nn.Module = self.model
        optim: torch.optim.Optimizer | dict[str, Any] = optimizer
        if self.kind == "fsdp":
            model_sd, optim_sd = _full_state(self.model, optimizer)
            if not self.me.main:
                return
            model = replica()
            model.load_state_dict(model_sd)
            optim = _keyed_by_index(optim_sd)
        if self.me.main:
            checkpoint.save(run_dir, state, model, optim, spec_json, tokenizer_json, keep, extras=extras,
                            rng_ranks=rngs if self.kind != "single" else None, only=only)

    def load(self, ckpt: Path, optimizer: torch.optim.Optimizer, seed: int, step: int) -> None:
        """Optimizer state and this process's RNG state from a checkpoint written by any number of processes
        (the weights were loaded into the plain model before it was wrapped)."""
        saved = checkpoint.load_optimizer_state(ckpt)
        if self.kind == "fsdp":
            # checked whole, against the full parameter shapes, before it is keyed by name and cut into shards
            checkpoint.check_optimizer_state(ckpt, optimizer, saved)
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(self.model, optimizer, _keyed_by_name(saved, optimizer, self.model),
                                     options=StateDictOptions(full_state_dict=True))
        else:
            checkpoint.apply_optimizer_state(ckpt, optimizer, saved)
        if not checkpoint.restore_rng(ckpt, self.me.rank):  # saved by fewer processes than now run
            torch.manual_seed(_derived_seed(seed, self.me.rank, step))


def _leaves_parameters_out(module: nn.Module, batch: Batch, device: torch.device) -> bool:
    """Whether some trainable parameter gets no gradient from the loss of `batch` (which parameters a loss
    reads does not depend on the data). Leaves no trace: gradients cleared, random state restored."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        module(batch, LossSums()).backward()
    params = [p for p in module.parameters() if p.requires_grad]
    unused = any(p.grad is None for p in params)
    for p in params:
        p.grad = None
    return unused


def _fully_shard(model: nn.Module, cfg: TrainConfig, device: torch.device) -> None:
    """FSDP2: each layer of every repeated block is a unit (gathered for its forward and backward,
    then freed); the rest of the model (embeddings, final norm, heads) is the root unit."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy()
    if cfg.precision == "bf16" and device.type == "cuda":
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in repeated_layers(model):
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def _full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """FSDP's full model and optimizer state dicts, gathered onto rank 0's CPU (empty elsewhere)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, optimizer, options=options)


def _keyed_by_index(optim_sd: dict[str, Any]) -> dict[str, Any]:
    """A state dict keyed by parameter name (torch.distributed.checkpoint's form) → keyed by position
    in the parameter groups, as `Optimizer.state_dict()` keys it on one process."""
    index: dict[str, int] = {}
    groups = []
    for group in optim_sd["param_groups"]:
        ids = [index.setdefault(name, len(index)) for name in group["params"]]
        groups.append({**group, "params": ids})
    return {"state": {index[name]: value for name, value in optim_sd["state"].items()}, "param_groups": groups}


def _keyed_by_name(saved: dict[str, Any], optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, Any]:
    """The inverse of `_keyed_by_index`, for this optimizer's parameters."""
    names = {id(p): name for name, p in model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    groups, at = [], 0
    for group in saved["param_groups"]:
        groups.append({**group, "params": order[at:at + len(group["params"])]})
        at += len(group["params"])
    return {"state": {order[i]: value for i, value in saved["state"].items()}, "param_groups": groups}


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _derived_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63)
