"""A saved optimizer state checked against the optimizer it is loaded into, before `load_state_dict`.

`weights_only=True` stops code, not shapes: a fused kernel (AdamW's) trusts that
every state tensor has its parameter's size, and one that does not makes it read
outside its buffers (a segfault, an abort, or gigabytes of memory). So every
state tensor is compared with its parameter first, whatever the optimizer:
``step`` is one finite, non-negative number (a scalar tensor or a plain
number); any other tensor is a finite floating-point tensor of the parameter's rank whose every dimension is
the parameter's or 1 (AdamW's moments and SGD's momentum have the parameter's
shape, Adafactor's factored row and column variances have a 1 in one place).
The parameter groups must match in number and size, and each saved setting must
have the type of the optimizer's own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from specc.lazy import lazy_import

if TYPE_CHECKING:
    import torch
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")


def check_state(state: Any, optimizer: torch.optim.Optimizer) -> str | None:
    """What is wrong with `state` as a state dict for `optimizer`, or None when it fits."""
    if not isinstance(state, Mapping) or not isinstance(state.get("state"), Mapping) \
            or not isinstance(state.get("param_groups"), list):
        return "not an optimizer state (expected 'state' and 'param_groups')"
    params = _params_by_index(optimizer)
    problem = _check_groups(state["param_groups"], optimizer.param_groups)
    if problem:
        return problem
    for index, entry in state["state"].items():
        if not isinstance(index, int) or isinstance(index, bool) or index not in params:
            return f"state for parameter {index!r}, which the optimizer does not have ({len(params)} parameters)"
        if not isinstance(entry, Mapping):
            return f"state of parameter {index} is not a table"
        for key, value in entry.items():
            problem = _check_value(key, value, params[index])
            if problem:
                return f"parameter {index} ({tuple(params[index].shape)}): '{key}' {problem}"
    return None


def _params_by_index(optimizer: torch.optim.Optimizer) -> dict[int, torch.Tensor]:
    """The optimizer's parameters by the running index `state_dict()` gives them."""
    flat = [p for group in optimizer.param_groups for p in group["params"]]
    return dict(enumerate(flat))


def _check_groups(saved: list[Any], current: list[dict[str, Any]]) -> str | None:
    if len(saved) != len(current):
        return f"{len(saved)} parameter groups, the optimizer has {len(current)}"
    start = 0
    for number, (group, mine) in enumerate(zip(saved, current)):
        if not isinstance(group, Mapping):
            return f"parameter group {number} is not a table"
        ids = group.get("params")
        expected = list(range(start, start + len(mine["params"])))
        if ids != expected:
            return f"parameter group {number} lists other parameters than the optimizer's ({len(mine['params'])} from {start})"
        start += len(mine["params"])
        for key, value in mine.items():
            # a setting a checkpoint of an older torch lacks takes its default in load_state_dict
            if key != "params" and key in group and not _same_kind(group[key], value):
                return f"parameter group {number}: setting '{key}' is {group[key]!r}, expected a value like {value!r}"
    return None


def _same_kind(saved: Any, mine: Any) -> bool:
    """Whether a saved group setting has the type of the optimizer's (ints and floats mix; finite numbers)."""
    if isinstance(mine, bool) or mine is None:
        return type(saved) is type(mine)
    if isinstance(mine, (int, float)):
        return isinstance(saved, (int, float)) and not isinstance(saved, bool) and math.isfinite(saved)
    if isinstance(mine, (tuple, list)):
        return isinstance(saved, (tuple, list)) and len(saved) == len(mine) and all(map(_same_kind, saved, mine))
    if isinstance(mine, torch.Tensor):
        return isinstance(saved, torch.Tensor) and saved.shape == mine.shape and bool(torch.isfinite(saved).all())
    return type(saved) is type(mine)


def _check_value(key: Any, value: Any, param: torch.Tensor) -> str | None:
    if key == "step":  # the step count: a number or a scalar tensor
        if isinstance(value, torch.Tensor):
            ok = value.dim() == 0 and not value.is_complex() and _finite_non_negative(value)
            return None if ok else f"is a tensor of shape {tuple(value.shape)}, not one non-negative number"
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        return None if ok else f"is {value!r}, not a non-negative number"
    if value is None:  # e.g. SGD's momentum buffer before its first step
        return None
    if not isinstance(value, torch.Tensor):
        return f"is a {type(value).__name__}, not a tensor"
    if value.is_complex() or value.layout != torch.strided:
        return "is not a dense real tensor"
    if value.dim() != param.dim() or any(n not in (m, 1) for n, m in zip(value.shape, param.shape)):
        return f"has shape {tuple(value.shape)}"
    if not value.is_floating_point():
        return f"has dtype {value.dtype}"
    if not bool(torch.isfinite(value).all()):
        return "holds NaN or infinite values"
    return None


def _finite_non_negative(value: torch.Tensor) -> bool:
    number = value.double()
    return bool(torch.isfinite(number)) and bool(number >= 0)
