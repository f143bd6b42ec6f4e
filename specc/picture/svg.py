"""A `View` drawn as SVG in pure Python: a layered (Sugiyama-style) layout, top to bottom.

Used when Graphviz is not installed, so `specc graph -o model.svg` works on any
machine with nothing beyond the project's own dependencies. Ranks are longest
paths from the inputs. An edge that skips ranks (a residual connection) gets a
waypoint in every rank it crosses, which takes a slot in that rank like a thin
box, so no edge runs through a box: between ranks an edge crosses only the empty
gap, and inside a rank it runs in its own slot. A few barycentre sweeps order
each rank. A box's output shape is written once, under the box, in room its
slot keeps for it; ties run down a lane right of everything. `layout` returns
the geometry (tests/test_graph_picture.py checks it for overlaps); `to_svg`
draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import networkx as nx

from specc.picture.view import Box, Edge, View

CHAR_W, LINE_H, PAD, GAP_X, GAP_Y, MARGIN = 7.0, 15.0, 8.0, 28.0, 46.0, 24.0
LABEL_CHAR_W, LABEL_H = 5.6, 11.0  # font-size 9 text: a generous width per character, and its height
WAYPOINT_W = 8.0  # the slot an edge takes in a rank it passes through
_FILL = {"input": "#e8f0fe", "output": "#e6f4ea", "op": "#ffffff", "block": "#fef7e0"}

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1
Point = tuple[float, float]


@dataclass
class Label:
    x: float  # left end of the text
    y: float  # baseline
    text: str
    colour: str

    def rect(self) -> Rect:
        return self.x, self.y - LABEL_H + 2, self.x + len(self.text) * LABEL_CHAR_W, self.y + 2


@dataclass
class Layout:
    """Where everything goes: boxes (top-left, size), edge polylines, labels, cluster frames."""

    boxes: dict[str, Rect] = field(default_factory=dict)
    edges: list[tuple[str, str, list[Point], bool]] = field(default_factory=list)  # src, dst, points, tie
    labels: list[Label] = field(default_factory=list)
    clusters: list[tuple[Rect, Label]] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def to_svg(v: View) -> str:
    lay = layout(v)
    boxes = {b.id: b for b in v.boxes}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" height="{lay.height:.0f}" '
           f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" font-family="Helvetica, Arial, sans-serif">',
           f"<title>{escape(v.title)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#5f6368"/></marker></defs>']
    for (x0, y0, x1, y1), label in lay.clusters:
        out.append(f'<g class="cluster"><rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                   f'rx="8" fill="none" stroke="#9aa0a6" stroke-dasharray="5,4"/>{_text(label, 10)}</g>')
    for _, _, points, tie in lay.edges:
        d = " ".join(f"{'M' if i == 0 else 'L'} {x:.1f} {y:.1f}" for i, (x, y) in enumerate(points))
        style = 'stroke="#a142f4" stroke-dasharray="4,3"' if tie else 'stroke="#5f6368" marker-end="url(#arrow)"'
        out.append(f'<path d="{d}" fill="none" stroke-linejoin="round" {style}/>')
    out += [_text(label, 9) for label in lay.labels]
    for i, rect in lay.boxes.items():
        out += _box(boxes[i], rect)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- layout -----------------------------------------------------------------------------------------
def layout(v: View) -> Layout:
    size = {b.id: _size(b) for b in v.boxes}
    flows = [e for e in v.edges if not e.tie]
    ranks = _ranks(v)
    chains, ranks = _waypoints(flows, ranks)  # every edge as a chain of slots, one per rank it touches
    rows = _order(v, chains, ranks)
    shape = {e.src: e.label for e in flows if e.label}  # a box's output shape, the same on all its edges
    half = {n: _halves(n, size, shape) for row in rows for n in row}
    lay = Layout()
    x, tops, bottoms = _place(rows, chains, half, size)
    for n, (w, h) in size.items():
        lay.boxes[n] = (x[n] - w / 2, tops[ranks[n]], x[n] + w / 2, tops[ranks[n]] + h)
    for src, text in shape.items():
        lay.labels.append(Label(x[src] + 4, bottoms[ranks[src]] + LABEL_H, text, "#5f6368"))
    for e, chain in zip(flows, chains):
        lay.edges.append((e.src, e.dst, _route(chain, x, lay.boxes, tops, bottoms, ranks), False))
    right = max(x[n] + half[n][1] for n in x) + GAP_X
    for e in (e for e in v.edges if e.tie):
        right = _tie(lay, e.src, e.dst, e.label, right, bottoms, tops, ranks)
    _clusters(v, lay)
    lay.width = max([right] + [r[2] for r in lay.boxes.values()] + [lab.rect()[2] for lab in lay.labels]) + MARGIN
    lay.height = max(r[3] for r in lay.boxes.values()) + MARGIN + LABEL_H
    return lay


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


def _waypoints(flows: list[Edge], ranks: dict[str, int]) -> tuple[list[list[str]], dict[str, int]]:
    """Each edge as [src, waypoints..., dst]: one waypoint in every rank strictly between its ends."""
    ranks = dict(ranks)
    chains = []
    for k, e in enumerate(flows):
        chain = [e.src]
        for r in range(ranks[e.src] + 1, ranks[e.dst]):
            point = f"\0{k}.{r}"  # no box id holds a NUL
            ranks[point] = r
            chain.append(point)
        chains.append(chain + [e.dst])
    return chains, ranks


def _order(v: View, chains: list[list[str]], ranks: dict[str, int]) -> list[list[str]]:
    """Slots per rank, ordered by a few barycentre sweeps (first by their order in the model)."""
    rows: list[list[str]] = [[] for _ in range(max(ranks.values()) + 1)]
    for b in v.boxes:
        rows[ranks[b.id]].append(b.id)
    for chain in chains:
        for point in chain[1:-1]:
            rows[ranks[point]].append(point)
    preds: dict[str, list[str]] = {n: [] for n in ranks}
    succs: dict[str, list[str]] = {n: [] for n in ranks}
    for chain in chains:
        for up, down in zip(chain, chain[1:]):
            preds[down].append(up)
            succs[up].append(down)
    for sweep in range(6):
        neighbours = preds if sweep % 2 == 0 else succs
        sequence = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        for r in sequence:
            index = {n: i for row in rows for i, n in enumerate(row)}
            rows[r].sort(key=lambda n: (sum(index[m] for m in neighbours[n]) / len(neighbours[n])
                                        if neighbours[n] else index[n]))
    return rows


def _halves(n: str, size: dict[str, tuple[float, float]], shape: dict[str, str]) -> tuple[float, float]:
    """Room a slot takes left and right of its centre: a box's half width, and on the right its shape label."""
    if n not in size:
        return WAYPOINT_W / 2, WAYPOINT_W / 2
    w = size[n][0] / 2
    label = len(shape[n]) * LABEL_CHAR_W + 8 if n in shape else 0.0
    return w, max(w, label)


def _place(rows: list[list[str]], chains: list[list[str]], half: dict[str, tuple[float, float]],
           size: dict[str, tuple[float, float]]) -> tuple[dict[str, float], list[float], list[float]]:
    """Centre x of every slot (under the mean of its parents where there is room), and each rank's top and bottom."""
    preds: dict[str, list[str]] = {n: [] for n in half}
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            preds[b].append(a)
    x: dict[str, float] = {}
    tops, bottoms = [], []
    y = MARGIN + 14  # room for a cluster label above the first row
    for row in rows:
        right = MARGIN
        for n in row:
            left_half, right_half = half[n]
            wanted = sum(x[p] for p in preds[n]) / len(preds[n]) if preds[n] else right + left_half
            x[n] = max(wanted, right + left_half)
            right = x[n] + right_half + (GAP_X if n in size else GAP_X / 2)
        height = max((size[n][1] for n in row if n in size), default=0.0)
        tops.append(y)
        bottoms.append(y + height)
        y += height + GAP_Y
    return x, tops, bottoms


def _route(chain: list[str], x: dict[str, float], boxes: dict[str, Rect], tops: list[float], bottoms: list[float],
           ranks: dict[str, int]) -> list[Point]:
    """Down the source's slot to the bottom of its rank, across each gap, down each waypoint's slot, into the target."""
    src, dst = chain[0], chain[-1]
    points: list[Point] = [(x[src], boxes[src][3]), (x[src], bottoms[ranks[src]])]
    for point in chain[1:-1]:
        r = ranks[point]
        points += [(x[point], tops[r]), (x[point], bottoms[r])]
    points.append((x[dst], boxes[dst][1]))
    return [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]


def _tie(lay: Layout, src: str, dst: str, label: str, lane: float, bottoms: list[float], tops: list[float],
         ranks: dict[str, int]) -> float:
    """A tie in its own lane right of everything: out under the source's rank, down the lane, in above the target's
    rank. Returns where the next lane starts."""
    a, b = lay.boxes[src], lay.boxes[dst]
    xa, xb = a[2] - 6, b[2] - 6
    if ranks[src] <= ranks[dst]:
        ya, yb = bottoms[ranks[src]] + 4, tops[ranks[dst]] - 4
        ends = [(xa, a[3]), (xa, ya), (lane, ya), (lane, yb), (xb, yb), (xb, b[1])]
    else:  # the owner sits below: come in under the target's rank
        ya, yb = tops[ranks[src]] - 4, bottoms[ranks[dst]] + 4
        ends = [(xa, a[1]), (xa, ya), (lane, ya), (lane, yb), (xb, yb), (xb, b[3])]
    lay.edges.append((src, dst, ends, True))
    text = Label(lane + 4, (ya + yb) / 2, label, "#a142f4")
    lay.labels.append(text)
    return text.rect()[2] + GAP_X


def _clusters(v: View, lay: Layout) -> None:
    for cid, label in v.clusters.items():
        members = [lay.boxes[b.id] for b in v.boxes if b.cluster == cid]
        x0 = min(r[0] for r in members) - 10
        x1 = max(r[2] for r in members) + 10
        y0 = min(r[1] for r in members) - 18
        y1 = max(r[3] for r in members) + 8
        lay.clusters.append(((x0, y0, x1, y1), Label(x0 + 6, y0 + 12, label, "#5f6368")))


# -- drawing ----------------------------------------------------------------------------------------
def _text(label: Label, font: int) -> str:
    return f'<text x="{label.x:.1f}" y="{label.y:.1f}" font-size="{font}" fill="{label.colour}">{escape(label.text)}</text>'


def _box(b: Box, rect: Rect) -> list[str]:
    x0, y0, x1, y1 = rect
    w, h, x = x1 - x0, y1 - y0, (x0 + x1) / 2
    lines = [line for line in b.lines if line]
    rx = h / 2 if b.kind in ("input", "output") else 6
    out = [f'<g class="{b.kind}"><title>{escape(" · ".join(lines))}</title>',
           f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx:.1f}" '
           f'fill="{_FILL[b.kind]}" stroke="#3c4043"/>']
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        out.append(f'<text x="{x:.1f}" y="{y0 + PAD + LINE_H * (i + 0.75):.1f}" font-size="11" text-anchor="middle"'
                   f'{weight}>{escape(line)}</text>')
    out.append("</g>")
    return out
