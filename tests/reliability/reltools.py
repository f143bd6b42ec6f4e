"""Helpers of the reliability tests: the CLI in-process, hostile pickles, damaged safetensors files."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

from runtools import assert_clean_error  # noqa: E402  (re-exported)

__all__ = ["assert_clean_error", "run_main", "Payload", "torch_payload", "pickle_payload", "SAFETENSORS_DAMAGE"]


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess:
    """The `specc` command line in-process: its exit status, stdout and stderr."""
    from specc.cli import main

    status = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


class Payload:
    """Unpickled, it runs `touch MARKER` (the classic `__reduce__` remote-code-execution payload)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def torch_payload(path: Path, marker: Path) -> None:
    """A `torch.save` zip archive whose pickle holds the payload, shaped like an optimizer state."""
    torch.save({"state": {0: Payload(marker)}, "param_groups": [], "cpu": Payload(marker)}, path)


def pickle_payload(path: Path, marker: Path) -> None:
    """A bare pickle (torch's legacy format) of the payload."""
    path.write_bytes(pickle.dumps({"weight": Payload(marker)}, protocol=2))


# -- damaged safetensors files: (bytes of a good file) -> bytes -----------------------------------------
def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join(header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + body


def _first_tensor(header: dict[str, Any]) -> dict[str, Any]:
    return header[next(k for k in sorted(header) if k != "__metadata__")]


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        header, body = _split(data)
        change(header)
        return _join(header, body)

    return damage


def _offsets_past_end(header: dict[str, Any]) -> None:
    t = _first_tensor(header)
    t["data_offsets"] = [t["data_offsets"][0] + 10**9, t["data_offsets"][1] + 10**9]


def _offsets_reversed(header: dict[str, Any]) -> None:
    t = _first_tensor(header)
    t["data_offsets"] = [t["data_offsets"][1], t["data_offsets"][0]]


def _shape_larger_than_data(header: dict[str, Any]) -> None:
    _first_tensor(header)["shape"] = [2**31, 2**31]


def _negative_offset(header: dict[str, Any]) -> None:
    _first_tensor(header)["data_offsets"][0] = -8


def _unknown_dtype(header: dict[str, Any]) -> None:
    _first_tensor(header)["dtype"] = "Q8"


SAFETENSORS_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "header length past the end": lambda data: (len(data) + 100).to_bytes(8, "little") + data[8:],
    "header length 2**60": lambda data: (2**60).to_bytes(8, "little") + data[8:],
    "header not JSON": lambda data: data[:8] + b"\x07" * int.from_bytes(data[:8], "little") + data[8 + int.from_bytes(data[:8], "little"):],
    "offsets past the end": _edit(_offsets_past_end),
    "offsets reversed": _edit(_offsets_reversed),
    "negative offset": _edit(_negative_offset),
    "shape larger than its data": _edit(_shape_larger_than_data),
    "unknown dtype": _edit(_unknown_dtype),
    "a pickle instead": lambda data: pickle.dumps({"weight": torch.zeros(2)}),
}
