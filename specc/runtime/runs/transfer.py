"""Starting a model from another run's checkpoint, and choosing how each parameter learns.

`inspect_source` compares a checkpoint's tensors with the new graph's
parameters by name and shape, before any model is built or anything written:
loaded, newly initialised, unused, shape-mismatched. A mismatch is an error
unless the task declared it (`reinit` patterns). `lr_scales` turns freezing
patterns, layer-wise learning-rate decay and a separate head learning rate
into one multiplier per parameter (0 freezes).

Name patterns match qualified parameter names (see `specc.graph.names`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from safetensors import SafetensorError, safe_open

from specc import tensorcheck
from specc.lazy import lazy_import
from specc.graph import LayerGraph
from specc.graph.names import matches, pattern  # noqa: F401  (re-exported: tasks match patterns through here)
from specc.runtime.runs import checkpoint
from specc.runtime.errors import UserError

if TYPE_CHECKING:
    import torch
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")


@dataclass
class TransferReport:
    """How a checkpoint's tensors map onto a new model's parameters."""

    source: Path
    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # newly initialised: not in the checkpoint
    unused: list[str] = field(default_factory=list)  # in the checkpoint, not in the model
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # name, model, checkpoint
    aliases: dict[str, str] = field(default_factory=dict)  # model name → name the tensor is stored under

    def lines(self) -> list[str]:
        def names(items: Sequence[str]) -> str:
            return ", ".join(_collapse(items)) if items else "none"

        out = [f"from {self.source}: loaded {len(self.loaded)} tensors; newly initialised {len(self.new)}: {names(self.new)}",
               f"  unused from the checkpoint {len(self.unused)}: {names(self.unused)}"]
        if self.mismatched:
            out.append("  shape-mismatched, re-initialised as declared: " +
                       ", ".join(f"{n} {list(a)} (checkpoint {list(b)})" for n, a, b in self.mismatched))
        return out


def _collapse(names: Sequence[str]) -> list[str]:
    """Group parameters by their node for a short report: 'mlm_head.* (6)'."""
    groups: dict[str, int] = {}
    for n in names:
        groups[n.split(".")[0]] = groups.get(n.split(".")[0], 0) + 1
    return [f"{g}.* ({c})" if c > 1 else next(n for n in names if n.split(".")[0] == g) for g, c in groups.items()]


def source_checkpoint(run: str | Path) -> Path:
    path = Path(run)
    if not path.exists():
        raise UserError(f"--from: run directory not found: {path}")
    return checkpoint.require_latest(path)


def source_graph(ckpt: Path) -> LayerGraph:
    """The architecture a checkpoint was trained with (from its stored canonical spec)."""
    from specc.runtime.runs.lineage import stored_graph

    return stored_graph(ckpt)


def inspect_source(ckpt: Path, graph: LayerGraph, reinit: Sequence[str]) -> TransferReport:
    """Compare `ckpt`'s tensors with `graph`'s parameters; an undeclared shape mismatch is a `UserError`."""
    stored = _stored_shapes(ckpt)
    # Tied tensors are stored once; any name of a tie group finds the stored one.
    aliases = _tie_aliases(source_graph(ckpt), stored)
    report = TransferReport(ckpt)
    undeclared = []
    used: set[str] = set()
    for name, shape in graph.parameter_names().items():
        key = name if name in stored else aliases.get(name)
        if key is None:
            report.new.append(name)
            continue
        used.add(key)
        if tuple(stored[key]) == tuple(shape):
            report.loaded.append(name)
            report.aliases[name] = key
        elif matches(name, reinit):
            report.mismatched.append((name, tuple(shape), tuple(stored[key])))
            report.new.append(name)
        else:
            undeclared.append(f"{name}: model {list(shape)}, checkpoint {list(stored[key])}")
    if undeclared:
        raise UserError(f"{ckpt} does not fit the model: {len(undeclared)} tensor(s) differ in shape:\n  " +
                        "\n  ".join(undeclared) + "\n  declare them in the task's reinit = [...] to start them afresh, "
                        "or change the spec to match the checkpoint")
    report.unused = sorted(k for k in stored if k not in used)
    return report


def load_matching(model: torch.nn.Module, report: TransferReport) -> None:
    """Copy the loaded tensors of `report` into `model` (tied parameters share storage, so once is enough)."""
    path = report.source / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            with torch.no_grad():
                for name in report.loaded:
                    stored = fh.get_tensor(report.aliases[name])
                    bad = tensorcheck.problem(stored)
                    if bad:
                        raise UserError(f"cannot load weights from {path}: tensor {report.aliases[name]} {bad}")
                    model.get_parameter(name).copy_(stored)
    except (SafetensorError, OSError) as err:
        raise UserError(f"cannot read weights from {path}: {err}") from None


def stored_names(ckpt: Path) -> set[str]:
    """The names of the tensors a checkpoint's ``model.safetensors`` holds."""
    return set(_stored_shapes(ckpt))


def _stored_shapes(ckpt: Path) -> dict[str, tuple[int, ...]]:
    path = ckpt / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except (SafetensorError, OSError) as err:
        raise UserError(f"cannot read weights from {path}: {err}") from None


def _tie_aliases(graph: LayerGraph, stored: dict[str, tuple[int, ...]]) -> dict[str, str]:
    groups: dict[str, set[str]] = {}
    for node in graph.nodes.values():
        for own, target in node.ties.items():
            groups.setdefault(target, {target}).add(f"{node.name}.{own}")
    out = {}
    for names in groups.values():
        kept = [n for n in names if n in stored]
        if kept:
            out.update({n: kept[0] for n in names if n not in stored})
    return out


def depths(graph: LayerGraph) -> tuple[dict[str, int], int]:
    """Each parameter's depth for layer-wise decay (embeddings 0, layer i of the repeated stacks i + 1,
    everything after the last stack L + 1) and L + 1."""
    by_group: list[tuple[str, int]] = []
    layer = 0
    seen_repeat = False
    last_repeat = max((i for i, g in enumerate(graph.groups) if g.kind == "repeat"), default=-1)
    for i, group in enumerate(graph.groups):
        if group.kind == "repeat":
            seen_repeat = True
            for inst in group.instances:
                layer += 1
                by_group.append((inst.name + ".", layer))
        else:
            by_group.append((group.name + ".", -1 if i > last_repeat and seen_repeat else layer))
    top = layer + 1
    out = {}
    for name in graph.parameter_names():
        depth = next((d for prefix, d in by_group if name.startswith(prefix)), top)
        out[name] = top if depth < 0 else depth
    return out, top


def lr_scales(graph: LayerGraph, lr: float, freeze: Sequence[str], layer_decay: float, head_lr: float | None,
              new: Sequence[str]) -> dict[str, float]:
    """Learning-rate multiplier per parameter: 0 when frozen, `head_lr / lr` for newly initialised
    parameters when a head learning rate is declared, else `layer_decay ** (L + 1 - depth)`."""
    depth, top = depths(graph)
    fresh = set(new)
    out = {}
    for name in graph.parameter_names():
        if matches(name, freeze):
            out[name] = 0.0
        elif head_lr is not None and name in fresh:
            out[name] = head_lr / lr
        else:
            out[name] = layer_decay ** (top - depth[name])
    return out


def load_run_weights(ckpt: Path, model: torch.nn.Module, graph: LayerGraph) -> None:
    """A checkpoint's weights into `model` (of `graph`). An adapted run's checkpoint holds only what it
    trained (adapters, a head): the rest comes from the base checkpoint its state names, which must still
    be there with the architecture it had; every parameter must be found in one of the two."""
    state = checkpoint.load_state(ckpt)
    if not state.base_ckpt:
        checkpoint.load_weights(ckpt, model)
        return
    base = Path(state.base_ckpt)
    if not (base / checkpoint.MARKER).exists():
        raise UserError(f"{ckpt} holds only adapter weights on top of {base}, which is no longer a complete checkpoint; "
                        "restore it, or keep a self-contained copy with `specc merge RUN` while the base exists")
    found = checkpoint.load_state(base).arch_hash
    if found != state.base_hash:
        raise UserError(f"{ckpt} was trained on {base} with architecture {state.base_hash}, but that checkpoint now has "
                        f"architecture {found or 'unknown'}: it was overwritten; restore the original base run")
    report = inspect_source(base, graph, ["*"])  # a reshaped tensor was trained afresh: it is in the run's own file
    load_matching(model, report)
    own = ckpt / "model.safetensors"
    params = dict(model.named_parameters())
    try:
        with safe_open(str(own), framework="pt", device="cpu") as fh, torch.no_grad():
            names = list(fh.keys())
            unknown = [n for n in names if n not in params]
            if unknown:
                raise UserError(f"{own} does not fit the model: unexpected {unknown[:5]}")
            for name in names:
                params[name].copy_(fh.get_tensor(name))
    except (SafetensorError, OSError) as err:
        raise UserError(f"cannot read weights from {own}: {err}") from None
    covered = {id(params[n]) for n in names} | {id(model.get_parameter(n)) for n in report.loaded}  # ties: one tensor
    missing = sorted(n for n, p in params.items() if id(p) not in covered)
    if missing:
        raise UserError(f"{own} and its base {base} together lack {len(missing)} tensor(s): {missing[:5]}")
