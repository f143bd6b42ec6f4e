"""`specc summary`: a per-block table of output shapes, parameters and FLOPs/token."""

from __future__ import annotations

import math

from specc.graph import Group, LayerGraph, Node
from specc.ops.base import fmt_shape


def summary_table(graph: LayerGraph, context: int | None = None) -> str:
    """Rows per top-level node (a repeated block is one row, ×N); totals at the bottom."""
    ctx = context or _default_context(graph)
    rows = [("node", "op / block", "output", "params", "FLOPs/token")]
    for group in graph.groups:
        rows.append(_row(graph, group, ctx))
    total_flops = graph.flops_per_token(ctx)
    rows.append(("total", "", "", f"{graph.param_count():,}", _si(total_flops)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        if i == len(rows) - 1 or i == 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
    title = f"{graph.spec.name or graph.spec.raw.file}  (FLOPs per token with {ctx} keys in attention; forward only)"
    return title + "\n" + "\n".join(lines + adapter_lines(graph))


def adapter_lines(graph: LayerGraph) -> list[str]:
    """Trainable and frozen parameters of a graph with adapters (nothing without them)."""
    adapters = graph.adapters
    if adapters is None:
        return []
    lora = sum(math.prod(s) for s in adapters.parameter_names().values())
    base = graph.parameter_names()
    full = sum(math.prod(s) for n, s in base.items() if adapters.trains_in_full(n))
    frozen = sum(math.prod(s) for s in base.values()) - full
    total = lora + full + frozen
    return [f"adapters: LoRA rank {adapters.lora.rank} (alpha {adapters.alpha:g}) on {len(adapters.layers)} linear layers: "
            f"{lora:,} parameters",
            f"trainable: {lora + full:,} ({100 * (lora + full) / total:.2f} %) = adapters {lora:,} + trained in full "
            f"{full:,}; frozen: {frozen:,}",
            "  (parameters a pretrained run lacks, such as a new task head, also train when fine-tuning)"]


def _row(graph: LayerGraph, group: Group, ctx: int) -> tuple[str, str, str, str, str]:
    nodes: list[Node] = [group.node] if group.node else [n for i in group.instances for n in i.nodes]
    params = sum(n.own_params() for n in nodes)
    flops = sum(n.record.flops(n.params, {k: graph.shape_of(v) for k, v in n.inputs.items()}, ctx) for n in nodes)
    if group.node:
        kind = group.node.op + (" (tied)" if group.node.ties else "")
    else:
        kind = f"{group.instances[0].block} × {len(group.instances)}" if group.kind == "repeat" else group.instances[0].block
    return (group.name, kind, fmt_shape(graph.shape_of(group.output)), f"{params:,}", _si(flops))


def _default_context(graph: LayerGraph) -> int:
    for name in ("max_seq", "max_len", "seq_len", "context"):
        value = graph.spec.params.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 512


def _si(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)
