"""Files of a Hugging Face model directory: `config.json` and the weights.

Weights come from `model.safetensors`, a sharded `model.safetensors.index.json`,
or (only through `torch.load(weights_only=True)`, which runs no pickled code)
`pytorch_model.bin` and its sharded index. Anything unreadable is an
`HFFormatError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from specc import jsonfile
from specc.diagnostics import UserError

SAFETENSORS, SAFE_INDEX = "model.safetensors", "model.safetensors.index.json"
BIN, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_INDEX_BYTES = 64 * 1024 * 1024  # a shard index names every tensor: a few hundred KB for the largest models


class HFFormatError(UserError):
    """A Hugging Face directory that cannot be read: missing, malformed or unsafe files."""


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """`config.json` of `folder` as a dict."""
    path = Path(folder) / "config.json"
    if not Path(folder).is_dir():
        raise HFFormatError(f"{folder}: not a directory")
    if not path.is_file():
        raise HFFormatError(f"{path}: no config.json (is this a Hugging Face model directory?)")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise HFFormatError(f"{path}: {path.stat().st_size} bytes is too large for a config")
    data = read_json(path)
    if not isinstance(data, dict):
        raise HFFormatError(f"{path}: expected a JSON object")
    return data


def read_json(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """A JSON file of a Hugging Face directory, bounded (size, depth, integer digits; specc.jsonfile): a failure is
    an `HFFormatError` naming it."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise HFFormatError(f"{path}: {size} bytes is too large for this file (at most {max_bytes})")
        return jsonfile.parse(path.read_bytes())
    except OSError as err:
        raise HFFormatError(f"{path}: cannot read: {err.strerror or err}") from None
    except jsonfile.BadJSON as err:
        raise HFFormatError(f"{path}: {err}") from None


def weight_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The weight files of `folder`, preferring safetensors; [] when there are none."""
    root = Path(folder)
    for single, index in ((SAFETENSORS, SAFE_INDEX), (BIN, BIN_INDEX)):
        if (root / single).is_file():
            return [root / single]
        if (root / index).is_file():
            return [root / name for name in _shards(root / index)]
    return []


def read_weights(folder: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every tensor of `folder`'s checkpoint by name (shards merged); HFFormatError if there is none."""
    files = weight_files(folder)
    if not files:
        raise HFFormatError(f"{folder}: no weights ({SAFETENSORS}, {SAFE_INDEX}, {BIN} or {BIN_INDEX})")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        part = _read_one(file)
        clash = sorted(set(part) & set(state))
        if clash:
            raise HFFormatError(f"{file}: tensor {clash[0]} is also in another shard")
        state.update(part)
    return state


def write_weights(folder: Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """`model.safetensors` in `folder` (tensors must not share storage: pass copies)."""
    path = folder / SAFETENSORS
    save_file(state, str(path), metadata={"format": "pt", **(metadata or {})})
    return path


def _shards(index: Path) -> list[str]:
    data = read_json(index, MAX_INDEX_BYTES)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise HFFormatError(f"{index}: 'weight_map' must map tensor names to shard files")
    names = sorted(set(weight_map.values()))
    for name in names:  # a shard is a file next to the index, never a path elsewhere
        if not isinstance(name, str) or Path(name).name != name or not (index.parent / name).is_file():
            raise HFFormatError(f"{index}: shard {name!r} is not a file in {index.parent}")
    return names


def _read_one(file: Path) -> dict[str, torch.Tensor]:
    if file.suffix == ".safetensors":
        try:
            return load_file(str(file))
        except (SafetensorError, OSError, ValueError) as err:
            raise HFFormatError(f"{file}: cannot read safetensors: {err}") from None
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refusals and corruption of every kind are reported, not raised raw
        raise HFFormatError(f"{file}: cannot load with weights_only=True: {type(err).__name__}: {err}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()):
        raise HFFormatError(f"{file}: expected a dict of tensors")
    return data
