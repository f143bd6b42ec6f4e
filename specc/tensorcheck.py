"""Weights checked as they are loaded: the dtype a file declares, and finiteness.

A safetensors header may call F32 data I32 (the bytes are then read as
integers and cast: garbage, silently), and a file may hold NaN or infinite
weights (`generate` then dies in `torch.multinomial`, `eval` prints
`val_loss nan` and exits 0, `export-hf` writes the garbage on). Every path that
loads weights asks `problem` of each tensor and refuses with the tensor's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from specc.lazy import lazy_import

if TYPE_CHECKING:
    import torch
else:  # imported on first use, so `specc check` runs without torch (specc/lazy.py)
    torch = lazy_import("torch")

# safetensors' names of the floating dtypes, by torch's (as text: naming torch.float32 here would import torch)
SAFETENSORS_DTYPES = {"torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16", "torch.float64": "F64"}


# E050's hint wherever a size is past what a tensor can hold.
TOO_LARGE_HINT = "check the sizes in [params]; `specc summary` counts parameters without allocating"


def past_tensor_limit(err: BaseException) -> bool:
    """Whether torch refused a tensor of more than 2**63 elements, which cannot exist even on the meta device:
    a RuntimeError ("Storage size calculation overflowed"), or, for one dimension past 2**63 (heads x head_dim),
    a TypeError from unpacking the size."""
    return isinstance(err, (RuntimeError, TypeError)) and "overflow" in str(err).lower()


def problem(tensor: torch.Tensor) -> str | None:
    """What makes `tensor` unfit as the weights of a floating-point parameter, or None."""
    if not tensor.is_floating_point():
        return f"is stored as {tensor.dtype}, not a floating-point type"
    if not bool(torch.isfinite(tensor).all()):
        return "holds NaN or infinite values"
    return None


def header_problem(stored: str, like: torch.Tensor) -> str | None:
    """Whether a safetensors dtype name (``F32``) fits a model tensor: a floating tensor must be stored as the same
    floating type (a cast of the bytes of another type is garbage, not weights)."""
    want = SAFETENSORS_DTYPES.get(str(like.dtype))
    if want is None or stored == want:
        return None
    return f"is stored as {stored}, the model's is {want}"


def first_problem(tensors: dict[str, torch.Tensor]) -> str | None:
    """'name problem' of the first unfit floating tensor of a state dict (integer buffers are left alone)."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"tensor {name} holds NaN or infinite values"
    return None
