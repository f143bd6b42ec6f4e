"""The weight-compatibility table: which tensors of a checkpoint of A load into B.

Tensors match by name, or through declared layer mappings (``h.6:12=h.0:6``
fills B's layers 6–11 from A's layers 0–5), and load as they are when their
shapes agree. Everything else is reshaped (same name, other shape), new (in B
only) or dropped (in A only).
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from specc.diagnostics import UserError
from specc.diff.types import Compat, Fit, TensorFit

Shapes = Mapping[str, tuple[int, ...]]
_RANGE = re.compile(r"^(\d+):(\d+)$")


def parse_mapping(items: Sequence[str]) -> list[tuple[str, str]]:
    """``NEW=OLD`` entries → (new prefix, old prefix) pairs, ranges expanded layer by layer.

    A side is a name prefix (``h.3``, ``decoder``) or a prefix with a layer range
    (``h.0:6``); two ranges must hold as many layers.
    """
    pairs: list[tuple[str, str]] = []
    for item in items:
        new, sep, old = item.partition("=")
        new, old = new.strip(), old.strip()
        if not sep or not new or not old:
            raise UserError(f"--map expects NEW=OLD (e.g. h.6:12=h.0:6), got '{item}'")
        new_side, old_side = _side(new), _side(old)
        if (new_side[1] is None) != (old_side[1] is None):
            raise UserError(f"--map '{item}': give a layer range on both sides or on neither")
        if new_side[1] is None or old_side[1] is None:
            pairs.append((new + ".", old + "."))
            continue
        if len(new_side[1]) != len(old_side[1]):
            raise UserError(f"--map '{item}': {len(new_side[1])} new layers but {len(old_side[1])} old ones")
        pairs += [(f"{new_side[0]}.{j}.", f"{old_side[0]}.{i}.") for j, i in zip(new_side[1], old_side[1])]
    return pairs


def _side(text: str) -> tuple[str, range | None]:
    prefix, _, last = text.rpartition(".")
    match = _RANGE.match(last)
    if not prefix or match is None:
        return text, None
    start, stop = int(match.group(1)), int(match.group(2))
    if stop <= start:
        raise UserError(f"--map: empty layer range '{last}' in '{text}'")
    return prefix, range(start, stop)


def source_name(name: str, pairs: Sequence[tuple[str, str]]) -> str:
    """The tensor of A that B's tensor `name` loads from (the last mapping that applies wins)."""
    for new, old in reversed(pairs):
        if name.startswith(new):
            return old + name[len(new):]
    return name


def compat_table(source: Shapes, target: Shapes, mapping: Sequence[str] = (), *,
                 source_label: str = "A", target_label: str = "B") -> Compat:
    """Fit of every tensor: B's tensors in B's order, then A's dropped tensors in A's order."""
    pairs = parse_mapping(mapping)
    used: set[str] = set()
    rows: list[TensorFit] = []
    for name, shape in target.items():
        src = source_name(name, pairs)
        if src not in source:
            rows.append(TensorFit(name, "new", None, None, list(shape)))
            continue
        used.add(src)
        fit: Fit = "loads" if tuple(source[src]) == tuple(shape) else "reshaped"
        rows.append(TensorFit(name, fit, src, list(source[src]), list(shape)))
    rows += [TensorFit(name, "dropped", name, list(shape), None) for name, shape in source.items() if name not in used]
    return Compat(source_label, target_label, rows, list(mapping))
