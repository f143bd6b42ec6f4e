"""Checkpoints: one directory per save, written atomically, loaded without pickle.

Layout of ``<run>/checkpoints/step-00000200/``:
``model.safetensors`` (weights, ties stored once), ``optimizer.pt`` (tensors and
plain values only, loaded with ``weights_only=True``), ``rng.pt``, ``state.json``
(step, data position, best validation loss), ``spec.json`` (canonical resolved
spec) with its hashes, ``tokenizer.json``, and ``COMPLETE`` written last. A
directory without ``COMPLETE`` is never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union, get_args, get_origin, get_type_hints

from safetensors import SafetensorError, safe_open

from specc import jsonfile, tensorcheck
from specc.atomic import atomic_dir
from specc.lazy import lazy_import
from specc.runtime.errors import UserError
from specc.runtime.optim_state import check_state

if TYPE_CHECKING:
    import torch
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")

MARKER = "COMPLETE"


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    samples: int = 0  # data position: samples consumed
    best_val: float | None = None
    stale_evals: int = 0  # evaluations without improvement (early stopping)
    arch_hash: str = ""
    runtime_hash: str = ""
    base: str = ""  # folder relative data paths resolve against
    skipped: int = 0  # steps whose update was dropped (specc.runtime.train.guard: non-finite loss or gradients, loss spikes)
    spikes: int = 0  # loss spikes in a row
    recent_losses: list[float] = field(default_factory=list)  # the loss-spike window
    # An adapted (LoRA) run stores only what it trains; the rest of its weights are this base checkpoint's,
    # which must still have the architecture hash recorded here (specc.runtime.runs.transfer.load_run_weights).
    base_ckpt: str = ""
    base_hash: str = ""
    best_step: int = 0  # with keep_best: the step of the best evaluation, whose checkpoint is kept beside the last N


def save(run_dir: Path, state: TrainState, model: torch.nn.Module, optimizer: torch.optim.Optimizer | Mapping[str, Any],
         spec_json: str, tokenizer_json: str, keep: int, extras: Mapping[str, str] | None = None,
         rng_ranks: list[dict[str, torch.Tensor]] | None = None, only: Sequence[str] | None = None) -> Path:
    """Write a checkpoint atomically (temp dir, fsync, rename, marker); keep the last `keep`.
    `extras` are further text files (name → content) it carries, e.g. a task's label set;
    `only` names the parameters to store (an adapted run's trained ones), default all.
    `optimizer` may be given as its state dict; `rng_ranks` are the RNG states of every process
    of a multi-process run (``rng.pt`` keeps this process's as its own too)."""
    root = run_dir / "checkpoints"
    final = root / f"step-{state.step:08d}"
    try:
        # The same step saved again replaces its old copy whole. Nothing half-written stays behind.
        from safetensors.torch import save_file, save_model  # imports torch

        with atomic_dir(final, replace=True) as tmp:
            if only is None:
                save_model(_unwrap(model), str(tmp / "model.safetensors"))
            else:
                params = dict(_unwrap(model).named_parameters())
                save_file({n: params[n].detach().contiguous() for n in only}, str(tmp / "model.safetensors"))
            _torch_save(optimizer if isinstance(optimizer, Mapping) else optimizer.state_dict(), tmp / "optimizer.pt")
            rng: dict[str, Any] = {"cpu": torch.get_rng_state()}
            if torch.cuda.is_available():
                rng["cuda"] = torch.cuda.get_rng_state()
            if rng_ranks is not None:
                rng["ranks"] = rng_ranks
            _torch_save(rng, tmp / "rng.pt")
            (tmp / "state.json").write_text(json.dumps(asdict(state), indent=1))
            (tmp / "spec.json").write_text(spec_json)
            (tmp / "tokenizer.json").write_text(tokenizer_json)
            for name, text in (extras or {}).items():
                (tmp / name).write_text(text)
            (tmp / MARKER).write_text(str(state.step))
    except (OSError, SafetensorError) as err:  # a full disk, a quota, a read-only or vanished folder
        before = latest(run_dir)
        kept = f"the last complete checkpoint, {before.name}, is intact" if before else "no earlier checkpoint exists"
        raise UserError(f"cannot save checkpoint {final}: {getattr(err, 'strerror', None) or err}; {kept}") from None
    _prune(root, keep, state.best_step)
    return final


def _torch_save(obj: Any, path: Path) -> None:
    """`torch.save`, whose failed writes (a full disk) surface as an `OSError` like every other write's."""
    try:
        torch.save(obj, path)
    except RuntimeError as err:  # torch's archive writer reports ENOSPC and EIO as a RuntimeError
        raise OSError(f"writing {path.name} failed ({err})") from None


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run (or the checkpoint dir itself), else None."""
    if (run_dir / MARKER).exists():
        return run_dir
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return None
    done = [d for d in root.iterdir() if d.name.startswith("step-") and (d / MARKER).exists()]
    return max(done, key=lambda d: d.name) if done else None


def chosen(run_dir: Path, step: int | None = None, last: bool = False) -> Path:
    """The checkpoint a command reads: of `step` when given, the latest with `last`, else the best one
    (`best`)."""
    if step is not None:
        return at_step(run_dir, step)
    return require_latest(run_dir) if last else best(run_dir)


def best(run_dir: Path) -> Path:
    """The checkpoint of the run's best evaluation when the run kept it (keep_best), else its latest."""
    found = require_latest(run_dir)
    if found == run_dir:  # a checkpoint folder given directly
        return found
    step = load_state(found).best_step
    kept = run_dir / "checkpoints" / f"step-{step:08d}"
    return kept if step and (kept / MARKER).exists() else found


def at_step(run_dir: Path, step: int | None) -> Path:
    """The run's complete checkpoint of `step`, or its latest when `step` is None."""
    if step is None:
        return require_latest(run_dir)
    found = run_dir / "checkpoints" / f"step-{step:08d}"
    if not (found / MARKER).exists():
        root = run_dir / "checkpoints"
        kept = sorted(int(d.name[5:]) for d in root.iterdir() if d.name.startswith("step-") and (d / MARKER).exists()) \
            if root.is_dir() else []
        raise UserError(f"{run_dir} has no complete checkpoint of step {step} (kept: {', '.join(map(str, kept)) or 'none'})")
    return found


def describe(ckpt: Path) -> str:
    """What eval, generate and predict print (on stderr) before they use a checkpoint: its folder and step."""
    return f"checkpoint: {ckpt} (step {load_state(ckpt).step})"


def require_latest(run_dir: Path) -> Path:
    found = latest(run_dir)
    if found is None:
        raise UserError(f"no complete checkpoint in {run_dir}")
    return found


def load_state(ckpt: Path) -> TrainState:
    """``state.json``; unreadable, malformed or foreign content is a `UserError` naming the file."""
    path = ckpt / "state.json"
    data = jsonfile.read_object(path, "a run's training state")
    hints = get_type_hints(TrainState)
    wrong = sorted(k for k, v in data.items() if k not in hints or not _conforms(v, hints[k]))
    if wrong:
        raise UserError(f"cannot read {path}: unknown or mistyped fields {', '.join(wrong)}")
    outside = sorted(k for k in COUNTS if not 0 <= data.get(k, 0) < 2**63)
    if outside:
        raise UserError(f"cannot read {path}: {', '.join(f'{k} = {data[k]}' for k in outside)} "
                        "(a count is a whole number from 0 to 2**63 - 1)")
    return TrainState(**data)


COUNTS = ("step", "samples", "stale_evals", "skipped", "spikes")  # TrainState fields that count things


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type (int, float, str, a union with None, a list of those)."""
    if get_origin(hint) in (Union, UnionType):
        return any(_conforms(value, h) for h in get_args(hint))
    if get_origin(hint) is list:
        return isinstance(value, list) and all(_conforms(v, get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    return isinstance(value, int if hint is int else (int, float) if hint is float else hint)


def load_weights(ckpt: Path, model: torch.nn.Module) -> None:
    """Load `model.safetensors` strictly; a corrupt or mismatched file, a tensor stored as another dtype than the
    model's, or weights that are not finite, are a clear error."""
    path = ckpt / "model.safetensors"
    try:
        from safetensors.torch import load_model  # imports torch

        _check_header(path, _unwrap(model).state_dict())
        missing, unexpected = load_model(_unwrap(model), str(path), strict=False)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f"cannot load weights from {path}: {err}") from None
    if missing or unexpected:
        raise UserError(f"{path} does not fit the model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    bad = tensorcheck.first_problem(_unwrap(model).state_dict())
    if bad:
        raise UserError(f"cannot load weights from {path}: {bad} (the run diverged or the file is damaged)")


def _check_header(path: Path, expected: Mapping[str, torch.Tensor]) -> None:
    """Each stored tensor's declared dtype against the model's, before any byte is read as weights."""
    with safe_open(str(path), "pt") as f:
        for name in f.keys():
            if name in expected:
                bad = tensorcheck.header_problem(f.get_slice(name).get_dtype(), expected[name])
                if bad:
                    raise UserError(f"cannot load weights from {path}: tensor {name} {bad}")


def load_optimizer_state(ckpt: Path) -> dict[str, Any]:
    """``optimizer.pt``: tensors and plain values only (weights_only=True), as `Optimizer.state_dict()` gives them."""
    try:
        state: dict[str, Any] = torch.load(ckpt / "optimizer.pt", weights_only=True, map_location="cpu")
    except Exception as err:  # any unpickling refusal or corruption is reported, not raised raw
        raise UserError(f"cannot load training state from {ckpt}: {type(err).__name__}: {err}") from None
    return state


def check_optimizer_state(ckpt: Path, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """A `UserError` naming ``optimizer.pt`` unless `state` fits the optimizer's parameters (count, shapes, dtypes).
    Under FSDP the parameters are DTensors whose shape is the full (unsharded) one, which is what a saved
    state holds: the check is the same before a full state is cut into shards."""
    problem = check_state(state, optimizer)
    if problem:
        raise UserError(f"cannot load training state from {ckpt / 'optimizer.pt'}: {problem}; "
                        "the file is damaged or belongs to another model (resume from another checkpoint)")


def apply_optimizer_state(ckpt: Path, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state once it is checked against the optimizer's parameters (specc.runtime.optim_state):
    nothing of the wrong shape or dtype reaches a fused kernel."""
    check_optimizer_state(ckpt, optimizer, state)
    try:
        optimizer.load_state_dict(state)
    except Exception as err:  # a state of another shape is reported, not raised raw
        raise UserError(f"cannot load training state from {ckpt}: {type(err).__name__}: {err}") from None


def restore_rng(ckpt: Path, rank: int = 0) -> bool:
    """Set the RNG state of process `rank` from ``rng.pt``; False when the checkpoint holds none for it
    (written by fewer processes)."""
    try:
        rng: dict[str, Any] = torch.load(ckpt / "rng.pt", weights_only=True)
    except Exception as err:  # any unpickling refusal or corruption is reported, not raised raw
        raise UserError(f"cannot load training state from {ckpt}: {type(err).__name__}: {err}") from None
    state = _rng_of(rng, rank)
    if state is None:
        return False
    if not _is_rng(state.get("cpu")) or "cuda" in state and not _is_rng(state["cuda"]):
        raise UserError(f"cannot load training state from {ckpt / 'rng.pt'}: not a random-number generator state "
                        "(expected a table with a 'cpu' byte tensor)")
    try:
        torch.set_rng_state(state["cpu"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])
    except RuntimeError as err:  # a byte tensor of another length or content
        raise UserError(f"cannot load training state from {ckpt / 'rng.pt'}: {err}") from None
    return True


def _rng_of(rng: Any, rank: int) -> dict[str, Any] | None:
    """Process `rank`'s table of RNG states in a loaded ``rng.pt``; None when it holds none for that rank;
    {} (refused by the caller) when the file's structure is wrong."""
    if not isinstance(rng, dict):
        return {}
    if not rank:
        return rng
    ranks = rng.get("ranks") or []
    if not isinstance(ranks, list):
        return {}
    if rank >= len(ranks):
        return None
    return ranks[rank] if isinstance(ranks[rank], dict) else {}


def _is_rng(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "_orig_mod", getattr(model, "module", model))


def _prune(root: Path, keep: int, best: int = 0) -> None:
    """Keep the newest `keep` complete checkpoints (and the best one's, step `best`, when not 0); remove the
    temporary directories of saves that died before their rename (this save's own is renamed by now)."""
    done = sorted(d for d in root.iterdir() if d.name.startswith("step-") and (d / MARKER).exists())
    # renamed first, so a kill inside rmtree cannot leave a torn "complete" checkpoint
    for old in [d for d in done[:-keep] if not best or d.name != f"step-{best:08d}"]:
        os.replace(old, root / f".tmp-old-{old.name}-{os.getpid()}")
    discard_leftovers(root.parent)


def discard_leftovers(run_dir: Path) -> None:
    """Remove what saves killed midway left in the run's checkpoints folder: temporaries never renamed, and old
    checkpoints renamed out of the way but not yet deleted. A resume does this first: a kill inside the last save
    leaves no later save to clean up after it."""
    root = run_dir / "checkpoints"
    if root.is_dir():
        for old in [d for d in root.iterdir() if d.name.startswith(".tmp-")]:
            shutil.rmtree(old, ignore_errors=True)

