"""A `View` drawn as SVG in pure Python: a layered (Sugiyama-style) layout, top to bottom.

Used when Graphviz is not installed, so `specc graph -o model.svg` works on any
machine with nothing beyond the project's own dependencies. Ranks are longest
paths from the inputs; a few barycentre sweeps order each rank; an edge that
skips ranks (a residual connection) bends out to the side.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import networkx as nx

from specc.picture.view import Box, View

CHAR_W, LINE_H, PAD, GAP_X, GAP_Y, MARGIN = 7.0, 15.0, 8.0, 28.0, 46.0, 24.0
_FILL = {"input": "#e8f0fe", "output": "#e6f4ea", "op": "#ffffff", "block": "#fef7e0"}


def to_svg(v: View) -> str:
    boxes = {b.id: b for b in v.boxes}
    size = {b.id: _size(b) for b in v.boxes}
    ranks = _ranks(v)
    rows = _order(v, ranks)
    pos = _place(v, rows, size)
    width = max(x + size[i][0] / 2 for i, (x, _) in pos.items()) + MARGIN + 120
    height = max(y + size[i][1] for i, (_, y) in pos.items()) + MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
           f"<title>{escape(v.title)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#5f6368"/></marker></defs>']
    out += _clusters(v, pos, size)
    out += _edges(v, pos, size, ranks)
    for i, (x, y) in pos.items():
        out += _box(boxes[i], x, y, *size[i])
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _size(b: Box) -> tuple[float, float]:
    lines = [line for line in b.lines if line]
    return max(len(line) for line in lines) * CHAR_W + 2 * PAD + 8, len(lines) * LINE_H + 2 * PAD


def _ranks(v: View) -> dict[str, int]:
    """Longest path from a source, ties left out (they do not order the computation)."""
    g = nx.DiGraph()
    g.add_nodes_from(b.id for b in v.boxes)
    g.add_edges_from((e.src, e.dst) for e in v.edges if not e.tie)
    rank: dict[str, int] = {}
    for node in nx.topological_sort(g):
        rank[node] = max((rank[p] + 1 for p in g.predecessors(node)), default=0)
    return rank


def _order(v: View, ranks: dict[str, int]) -> list[list[str]]:
    """Boxes per rank, ordered by a few barycentre sweeps (first by their order in the model)."""
    rows: list[list[str]] = [[] for _ in range(max(ranks.values()) + 1)]
    for b in v.boxes:
        rows[ranks[b.id]].append(b.id)
    preds: dict[str, list[str]] = {b.id: [] for b in v.boxes}
    succs: dict[str, list[str]] = {b.id: [] for b in v.boxes}
    for e in v.edges:
        if not e.tie:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
    for sweep in range(4):
        neighbours = preds if sweep % 2 == 0 else succs
        sequence = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        for r in sequence:
            index = {n: i for row in rows for i, n in enumerate(row)}
            rows[r].sort(key=lambda n: (sum(index[m] for m in neighbours[n]) / len(neighbours[n])
                                        if neighbours[n] else index[n]))
    return rows


def _place(v: View, rows: list[list[str]], size: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Centre x and top y of every box: each box under the mean of its parents, without overlaps."""
    preds: dict[str, list[str]] = {b.id: [] for b in v.boxes}
    for e in v.edges:
        if not e.tie:
            preds[e.dst].append(e.src)
    pos: dict[str, tuple[float, float]] = {}
    y = MARGIN + 14  # room for a cluster label above the first row
    for row in rows:
        right = MARGIN
        for n in row:
            w = size[n][0]
            wanted = sum(pos[p][0] for p in preds[n]) / len(preds[n]) if preds[n] else right + w / 2
            x = max(wanted, right + w / 2)
            pos[n] = (x, y)
            right = x + w / 2 + GAP_X
        y += max(size[n][1] for n in row) + GAP_Y
    return pos


def _clusters(v: View, pos: dict[str, tuple[float, float]], size: dict[str, tuple[float, float]]) -> list[str]:
    out = []
    for cid, label in v.clusters.items():
        members = [b.id for b in v.boxes if b.cluster == cid]
        x0 = min(pos[m][0] - size[m][0] / 2 for m in members) - 10
        x1 = max(pos[m][0] + size[m][0] / 2 for m in members) + 10
        y0 = min(pos[m][1] for m in members) - 18
        y1 = max(pos[m][1] + size[m][1] for m in members) + 8
        out.append(f'<g class="cluster"><rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                   f'rx="8" fill="none" stroke="#9aa0a6" stroke-dasharray="5,4"/>'
                   f'<text x="{x0 + 6:.1f}" y="{y0 + 12:.1f}" font-size="10" fill="#5f6368">{escape(label)}</text></g>')
    return out


def _edges(v: View, pos: dict[str, tuple[float, float]], size: dict[str, tuple[float, float]],
           ranks: dict[str, int]) -> list[str]:
    out = []
    bends = 0
    for e in v.edges:
        (sx, sy), (tx, ty) = pos[e.src], pos[e.dst]
        x0, y0, x1, y1 = sx, sy + size[e.src][1], tx, ty
        if e.tie:
            y0, y1 = sy + size[e.src][1] / 2, ty + size[e.dst][1] / 2
            x0 += size[e.src][0] / 2
            x1 += size[e.dst][0] / 2
            bulge = 60 + 8 * (ranks[e.dst] - ranks[e.src])
            d = f"M {x0:.1f} {y0:.1f} C {x0 + bulge:.1f} {y0:.1f}, {x1 + bulge:.1f} {y1:.1f}, {x1:.1f} {y1:.1f}"
            out.append(f'<path d="{d}" fill="none" stroke="#a142f4" stroke-dasharray="4,3"/>')
            out.append(_text((x0 + x1) / 2 + bulge * 0.75 + 4, (y0 + y1) / 2, e.label, "#a142f4"))
            continue
        span = abs(ranks[e.dst] - ranks[e.src])
        if span <= 1:
            mid = (y0 + y1) / 2
            d = f"M {x0:.1f} {y0:.1f} C {x0:.1f} {mid:.1f}, {x1:.1f} {mid:.1f}, {x1:.1f} {y1:.1f}"
            lx, ly = (x0 + x1) / 2 + 4, mid + 3
        else:  # a skip connection bends out to the right of the boxes it passes
            bends += 1
            off = max(size[e.src][0], size[e.dst][0]) / 2 + 24 + 10 * (bends % 3)
            d = (f"M {x0:.1f} {y0:.1f} C {x0 + off:.1f} {y0 + 30:.1f}, {x1 + off:.1f} {y1 - 30:.1f}, "
                 f"{x1:.1f} {y1:.1f}")
            lx, ly = (x0 + x1) / 2 + off * 0.75 + 4, (y0 + y1) / 2  # the curve's midpoint
        out.append(f'<path d="{d}" fill="none" stroke="#5f6368" marker-end="url(#arrow)"/>')
        if e.label:
            out.append(_text(lx, ly, e.label, "#5f6368"))
    return out


def _text(x: float, y: float, text: str, colour: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="9" fill="{colour}">{escape(text)}</text>'


def _box(b: Box, x: float, y: float, w: float, h: float) -> list[str]:
    lines = [line for line in b.lines if line]
    rx = h / 2 if b.kind in ("input", "output") else 6
    out = [f'<g class="{b.kind}"><title>{escape(" · ".join(lines))}</title>',
           f'<rect x="{x - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx:.1f}" '
           f'fill="{_FILL[b.kind]}" stroke="#3c4043"/>']
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        out.append(f'<text x="{x:.1f}" y="{y + PAD + LINE_H * (i + 0.75):.1f}" font-size="11" text-anchor="middle"{weight}>'
                   f"{escape(line)}</text>")
    out.append("</g>")
    return out
