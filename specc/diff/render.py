"""A `SpecDiff` as terminal text (colour on a TTY), Markdown (for pull requests) or JSON."""

from __future__ import annotations

import json
from typing import Any, Callable

from specc.diff.align import collapse
from specc.diff.compare import show
from specc.diff.headline import si
from specc.diff.types import Compat, NodeChange, SpecDiff, ValueChange

_MARK = {"added": "+", "removed": "-", "changed": "~", "same": " "}
_COLOUR = {"+": "32", "-": "31", "~": "33", "!": "1"}
_FIT = {"loads": "loads as is", "reshaped": "changes shape", "new": "new", "dropped": "unused"}


def to_json(diff: SpecDiff) -> str:
    return json.dumps(diff.to_dict(), indent=1, ensure_ascii=False)


def summary_line(diff: SpecDiff) -> str:
    """The headline as one sentence: architecture phrases, then (after ';') what still loads."""
    if len(diff.headline) > 1 and not diff.same_architecture:
        return ", ".join(diff.headline[:-1]) + "; " + diff.headline[-1]
    return ", ".join(diff.headline)


# -- terminal -----------------------------------------------------------------------------
def render_text(diff: SpecDiff, colour: bool = False) -> str:
    paint: Callable[[str, str], str] = (lambda mark, s: f"\x1b[{_COLOUR[mark]}m{s}\x1b[0m") if colour else (lambda m, s: s)
    out = [paint("!", f"specc diff {diff.old} → {diff.new}")]
    same = " (same)" if diff.same_architecture else ""
    out.append(f"  architecture {diff.old_hash} → {diff.new_hash}{same}")
    out.append("  " + summary_line(diff))
    if diff.params:
        out += ["", paint("!", "params")] + _value_lines(diff.params, paint)
    if diff.model:
        out += ["", paint("!", "model")] + _value_lines(diff.model, paint)
    if diff.nodes:
        out += ["", paint("!", "layers")]
        nodes = _fold_shape_only(diff.nodes)
        width = max(len(n.node) for n in nodes)
        for n in nodes:
            mark = _MARK[n.status]
            text = f"{n.op}: " + "; ".join(n.details) if n.details else n.op
            out.append(paint(mark, f"  {mark} {n.node.ljust(width)}  {text}"))
    changed = [g for g in diff.groups if g.status != "same"]
    if changed:
        out += ["", paint("!", f"parameters and FLOPs per token by block (context {diff.context})")]
        rows: list[tuple[str, ...]] = [("block", "A params", "B params", "Δ params", "A FLOPs", "B FLOPs", "Δ FLOPs", "")]
        for g in changed:
            rows.append((f"{_MARK[g.status]} {g.name}", f"{g.params_old:,}", f"{g.params_new:,}", _signed(g.params_new - g.params_old),
                         si(g.flops_old), si(g.flops_new), _signed_si(g.flops_new - g.flops_old), g.layers or ""))
        rows.append(("  total", f"{diff.params_old:,}", f"{diff.params_new:,}", _signed(diff.params_new - diff.params_old),
                     si(diff.flops_old), si(diff.flops_new), _signed_si(diff.flops_new - diff.flops_old), ""))
        out += _table(rows)
    if diff.sections:
        out += ["", paint("!", "runtime")] + _value_lines(diff.sections, paint)
    if not diff.same_architecture or diff.compat.mapping:
        out += ["", paint("!", f"checkpoint: tensors of {diff.compat.source} in {diff.compat.target}")]
        out += _compat_lines(diff.compat, paint)
    return "\n".join(out)


def _value_lines(changes: list[ValueChange], paint: Callable[[str, str], str]) -> list[str]:
    width = max(len(c.path) for c in changes)
    lines = []
    for c in changes:
        mark = _MARK[c.status]
        if c.status == "changed":
            text = f"{_short(c.old)} → {_short(c.new)}"
        else:
            text = _short(c.new if c.status == "added" else c.old)
        expr = f"  = {c.expr}" if c.expr else ""
        where = c.new_at or c.old_at
        lines.append(paint(mark, f"  {mark} {c.path.ljust(width)}  {text}{expr}") + (f"  @ {where}" if where else ""))
    return lines


def _compat_lines(compat: Compat, paint: Callable[[str, str], str]) -> list[str]:
    counts = " · ".join(f"{_FIT[f]} {compat.count(f)}" for f in _FIT if compat.count(f))  # type: ignore[arg-type]
    lines = ["  " + counts]
    if compat.mapping:
        lines.append("  mappings: " + ", ".join(compat.mapping))
    rows = collapse((t.name, (t.fit, _shape(t.old_shape), _shape(t.new_shape), t.source != t.name and t.fit != "new"))
                    for t in compat.tensors)
    sources = {t.name: t.source for t in compat.tensors}
    width = max((len(name) for name, _, _ in rows), default=0)
    for name, (fit, old, new, mapped), count in rows:
        mark = {"loads": " ", "reshaped": "~", "new": "+", "dropped": "-"}[fit]
        shapes = new if fit == "loads" else f"{old} → {new}" if fit == "reshaped" else new if fit == "new" else old
        source = f"  ← {sources.get(name)}" if mapped and count == 1 else "  (mapped)" if mapped else ""
        text = f"  {mark} {name.ljust(width)}  {_FIT[fit]:<13}  {shapes}{source}"
        lines.append(paint(mark, text) if mark != " " else text)
    if compat.suggested:
        lines.append("  the layers moved: to load them where they now are, pass " +
                     " ".join(f"--map {m}" for m in compat.suggested))
    return lines


# -- markdown -----------------------------------------------------------------------------
def render_markdown(diff: SpecDiff) -> str:
    out = [f"### `{diff.old}` → `{diff.new}`", "", f"**{summary_line(diff)}**", ""]
    same = " (same)" if diff.same_architecture else ""
    out.append(f"Architecture hash `{diff.old_hash}` → `{diff.new_hash}`{same}.")
    if diff.params or diff.model:
        out += ["", "#### Values", "", "| | value | A | B | set in |", "|---|---|---|---|---|"]
        for c in diff.params + diff.model:
            new = _short(c.new) + (f" (`{c.expr}`)" if c.expr else "")
            out.append(f"| {_MARK[c.status]} | `{c.path}` | {_md(_short(c.old))} | {_md(new)} | {_md(c.new_at or c.old_at or '')} |")
    if diff.nodes:
        out += ["", "#### Layers", "", "| | node | op | change |", "|---|---|---|---|"]
        for n in _fold_shape_only(diff.nodes):
            out.append(f"| {_MARK[n.status]} | `{n.node}` | {_md(n.op)} | {_md('; '.join(n.details))} |")
    changed = [g for g in diff.groups if g.status != "same"]
    if changed:
        out += ["", f"#### Parameters and FLOPs per token (context {diff.context})", "",
                "| block | A params | B params | Δ params | A FLOPs | B FLOPs | Δ FLOPs | layers |",
                "|---|---:|---:|---:|---:|---:|---:|---|"]
        for g in changed:
            out.append(f"| {_MARK[g.status]} `{g.name}` | {g.params_old:,} | {g.params_new:,} | {_signed(g.params_new - g.params_old)} "
                       f"| {si(g.flops_old)} | {si(g.flops_new)} | {_signed_si(g.flops_new - g.flops_old)} | {_md(g.layers or '')} |")
        out.append(f"| **total** | {diff.params_old:,} | {diff.params_new:,} | {_signed(diff.params_new - diff.params_old)} "
                   f"| {si(diff.flops_old)} | {si(diff.flops_new)} | {_signed_si(diff.flops_new - diff.flops_old)} | |")
    if diff.sections:
        out += ["", "#### Runtime", "", "| | setting | A | B | set in |", "|---|---|---|---|---|"]
        for c in diff.sections:
            out.append(f"| {_MARK[c.status]} | `{c.path}` | {_md(_short(c.old))} | {_md(_short(c.new))} | {_md(c.new_at or c.old_at or '')} |")
    if not diff.same_architecture or diff.compat.mapping:
        compat = diff.compat
        out += ["", f"#### Checkpoint compatibility: tensors of `{compat.source}` in `{compat.target}`", "",
                "| fit | tensors | elements |", "|---|---:|---:|"]
        for fit, word in _FIT.items():
            out.append(f"| {word} | {compat.count(fit)} | {compat.numel(fit):,} |")  # type: ignore[arg-type]
        out += ["", "<details><summary>every tensor</summary>", "", "| tensor | fit | A shape | B shape |", "|---|---|---|---|"]
        for name, (fit, old, new, _), _n in collapse((t.name, (t.fit, _shape(t.old_shape), _shape(t.new_shape), False))
                                                     for t in compat.tensors):
            out.append(f"| `{name}` | {_FIT[fit]} | {old} | {new} |")
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


# -- helpers ------------------------------------------------------------------------------
def _fold_shape_only(nodes: list[NodeChange]) -> list[NodeChange]:
    """Nodes whose only change is their output shape (an add, a dropout after a wider layer), one line per shape change."""
    folded: dict[str, list[NodeChange]] = {}
    for n in nodes:
        if n.status == "changed" and len(n.details) == 1 and n.details[0].startswith("output "):
            folded.setdefault(n.details[0], []).append(n)
    out: list[NodeChange] = []
    done: set[str] = set()
    for n in nodes:
        group = folded.get(n.details[0]) if n.details else None
        if not group or len(group) < 3:
            out.append(n)
            continue
        if n.details[0] in done:
            continue
        done.add(n.details[0])
        names = ", ".join(m.node for m in group[:3]) + (f" and {len(group) - 3} more" if len(group) > 3 else "")
        out.append(NodeChange(names, "changed", "shape only", list(n.details), None, sum(m.count for m in group)))
    return out



def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i in (0, len(row) - 1) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _shape(shape: list[int] | None) -> str:
    return "" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def _signed(n: int) -> str:
    return f"+{n:,}" if n > 0 else f"−{-n:,}" if n < 0 else "0"


def _signed_si(n: int) -> str:
    return f"+{si(n)}" if n > 0 else f"−{si(-n)}" if n < 0 else "0"


def _short(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= 60 else text[:57] + "…"
    if value is None:
        return "—"
    return show(value)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
