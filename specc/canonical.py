"""Canonical form and content hashes of a spec.

The canonical form is the fully merged spec tree (after `extends` and `--set`)
with `[params]` evaluated to numbers, serialised as sorted-key JSON. The
architecture hash covers what builds the model (format, params, init, blocks,
model); the runtime sections get their own hash, so changing a learning rate
does not change the architecture's identity.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from specc.schema import ModelSpec
from specc.schema.model import RUNTIME_SECTIONS

ARCHITECTURE_KEYS = ("format", "params", "init", "blocks", "model")


def canonical_data(spec: ModelSpec) -> dict[str, Any]:
    """The merged spec tree with params resolved; stable across formatting and key order."""
    data = json.loads(json.dumps(spec.raw.data, sort_keys=True))
    data["params"] = dict(sorted(spec.params.items()))
    return data


def canonical_json(spec: ModelSpec) -> str:
    return json.dumps(canonical_data(spec), sort_keys=True, indent=1, ensure_ascii=False)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def architecture_hash(spec: ModelSpec) -> str:
    data = canonical_data(spec)
    return _digest({k: data.get(k) for k in ARCHITECTURE_KEYS})


def runtime_hash(spec: ModelSpec) -> str:
    data = canonical_data(spec)
    return _digest({k: data.get(k) for k in RUNTIME_SECTIONS})
