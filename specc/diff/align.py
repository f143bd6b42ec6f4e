"""Aligning repeated blocks, and collapsing runs of layers into one line.

A repeated block is a sequence of instances; two sequences are aligned like
two texts (`difflib.SequenceMatcher` over each instance's local structure), so
inserting one layer shows as one insertion, not a cascade of changed layers.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Hashable, Iterable, Sequence, TypeVar

from specc.graph import BlockInstance, LayerGraph, Node
from specc.ops.base import fmt_shape

K = TypeVar("K", bound=Hashable)

_INDEX = re.compile(r"(?<=\.)(\d+)(?=\.|$)")


def local_signature(node: Node, prefix: str, inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """A node as seen from inside its block instance (or the top level): names relative, params in full.

    `inputs` maps qualified sources that are the instance's inputs to `<name>`;
    `outputs` maps a repeated/block group's output node to the group's name.
    """
    def local(src: str) -> str:
        if src in inputs:
            return inputs[src]
        if src in outputs:
            return outputs[src]
        return src[len(prefix):] if prefix and src.startswith(prefix) else src

    return {
        "op": node.op,
        "params": node.params.model_dump(mode="json"),
        "in": {k: local(v) for k, v in node.inputs.items()},
        "ties": {k: local(v) for k, v in node.ties.items()},
        "shape": fmt_shape(node.shape),
    }


def instance_signatures(graph: LayerGraph, instances: Sequence[BlockInstance]) -> list[str]:
    return [json.dumps(instance_view(graph, inst), sort_keys=True) for inst in instances]


def instance_view(graph: LayerGraph, inst: BlockInstance) -> dict[str, dict[str, Any]]:
    """Local name → local signature of every node of a block instance."""
    names = graph.spec.blocks[inst.block].inputs
    inputs = {src: f"<{name}>" for src, name in zip(inst.inputs, names)}
    prefix = inst.name + "."
    outs = group_outputs(graph)
    return {n.name[len(prefix):]: local_signature(n, prefix, inputs, outs) for n in inst.nodes}


def group_outputs(graph: LayerGraph) -> dict[str, str]:
    """Output node of each block or repeat group → the group's name (how the top level refers to it)."""
    return {g.output: g.name for g in graph.groups if g.kind != "op"}


def align(old: Sequence[str], new: Sequence[str]) -> list[tuple[int | None, int | None]]:
    """Pairs (old index, new index); None on one side is an insertion or a deletion.

    The fewest edits, where a changed layer, an inserted one and a removed one
    each cost one: a run of changed layers stays a run of changes, one inserted
    layer is one insertion, and among equally short alignments insertions and
    removals go last.
    """
    n, m = len(old), len(new)
    if n * m > 400_000:  # thousands of layers on both sides: a matcher instead of the quadratic table
        return _matched(old, new)
    # cost[i][j]: edits to turn old[i:] into new[j:]
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            if i == n or j == m:
                cost[i][j] = (n - i) + (m - j)
            else:
                cost[i][j] = min(cost[i + 1][j + 1] + (old[i] != new[j]), cost[i + 1][j] + 1, cost[i][j + 1] + 1)
    pairs: list[tuple[int | None, int | None]] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and cost[i][j] == cost[i + 1][j + 1] + (old[i] != new[j]):
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif i < n and cost[i][j] == cost[i + 1][j] + 1:
            pairs.append((i, None))
            i += 1
        else:
            pairs.append((None, j))
            j += 1
    return pairs


def _matched(old: Sequence[str], new: Sequence[str]) -> list[tuple[int | None, int | None]]:
    pairs: list[tuple[int | None, int | None]] = []
    matcher = difflib.SequenceMatcher(None, list(old), list(new), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        common = min(i2 - i1, j2 - j1) if tag in ("equal", "replace") else 0
        pairs += list(zip(range(i1, i1 + common), range(j1, j1 + common)))
        pairs += [(i, None) for i in range(i1 + common, i2)]
        pairs += [(None, j) for j in range(j1 + common, j2)]
    return pairs


def ranges(indices: Iterable[int]) -> str:
    """`[0, 1, 2, 5, 7, 8]` → ``"0–2, 5, 7–8"``."""
    runs: list[list[int]] = []
    for i in sorted(set(indices)):
        if runs and runs[-1][1] + 1 == i:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def collapse(items: Iterable[tuple[str, K]]) -> list[tuple[str, K, int]]:
    """Merge names that differ only in a layer index and share a payload: ``h.{0–11}.mlp``.

    Returns (name or pattern, payload, how many names it stands for), in first-seen order.
    """
    groups: dict[tuple[str, K], list[int]] = {}
    plain: dict[tuple[str, K], None] = {}
    order: list[tuple[str, K]] = []
    for name, payload in items:
        match = _INDEX.search(name)
        if match is None:
            key = (name, payload)
            if key not in plain:
                plain[key] = None
                order.append(key)
            continue
        template = name[: match.start()] + "{}" + name[match.end():]
        key = (template, payload)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(int(match.group(1)))
    out: list[tuple[str, K, int]] = []
    for key in order:
        template, payload = key
        if key in plain:
            out.append((template, payload, 1))
            continue
        idx = groups[key]
        label = str(idx[0]) if len(idx) == 1 else "{" + ranges(idx) + "}"
        out.append((template.replace("{}", label, 1), payload, len(idx)))
    return out


def offset_runs(pairs: Sequence[tuple[int | None, int | None]]) -> list[tuple[int, int, int]]:
    """Runs of aligned pairs whose index moved: (new start, old start, length), for suggested mappings."""
    runs: list[tuple[int, int, int]] = []
    for i, j in pairs:
        if i is None or j is None or i == j:
            continue
        if runs and runs[-1][0] + runs[-1][2] == j and runs[-1][1] + runs[-1][2] == i:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((j, i, 1))
    return runs
