"""`specc graph`: DOT with blocks collapsed or expanded, shapes on edges and parameter counts on boxes;
SVG drawn without Graphviz; PNG without Graphviz is a clear error."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import specc
from specc.cli import main
from specc.picture import to_dot, to_svg, view
from specc.picture.svg import layout

SPECS = Path(__file__).resolve().parent.parent / "specs"


def test_collapsed_view_has_one_box_per_top_level_entry() -> None:
    graph = specc.load_graph(SPECS / "gpt2-small.toml")
    v = view(graph, expand=set())
    ids = [b.id for b in v.boxes]
    assert ids == ["tokens", "attention_mask", *[g.name for g in graph.groups], "out:logits", "out:hidden"]
    h = next(b for b in v.boxes if b.id == "h")
    assert h.lines == ["h", "decoder_layer × 12", "85.1 M params"] and h.kind == "block"
    assert any(e.src == "drop" and e.dst == "h" and e.label == "[batch, seq, 768]" for e in v.edges)
    assert any(e.tie and (e.src, e.dst) == ("wte", "lm_head") for e in v.edges)


def test_expanded_view_has_a_cluster_per_layer() -> None:
    graph = specc.load_graph(SPECS / "gpt-tiny.toml")
    v = view(graph)  # every block expanded
    assert list(v.clusters) == ["h.0", "h.1", "h.2", "h.3"]
    assert len([b for b in v.boxes if b.cluster == "h.2"]) == 8
    assert any(e.src == "h.1.out" and e.dst == "h.2.ln_1" for e in v.edges)
    assert any(e.src == "attention_mask" and e.dst == "h.3.attn" for e in v.edges)


def test_dot_text() -> None:
    dot = to_dot(view(specc.load_graph(SPECS / "t5-tiny.toml"), expand={"encoder"}))
    assert dot.startswith('digraph "t5-tiny" {')
    assert 'subgraph "cluster_encoder.0"' in dot and 'subgraph "cluster_decoder.0"' not in dot
    assert re.search(r'"decoder" \[label="decoder\\ndecoder_layer × \d+\\n[\d.]+ [KM] params"', dot)
    assert dot.count("{") == dot.count("}")


def test_svg_is_well_formed_and_labelled() -> None:
    svg = to_svg(view(specc.load_graph(SPECS / "bert-base.toml"), expand=set()))
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "layer" in texts and "encoder_layer × 12" in texts and "85.1 M params" in texts
    assert "[batch, seq, 768]" in texts
    assert float(root.get("width")) > 200 and float(root.get("height")) > 500


def test_graph_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)  # no Graphviz, as on a fresh machine
    spec = str(SPECS / "gpt-tiny.toml")
    assert main(["graph", spec]) == 0 and capsys.readouterr().out.startswith('digraph "gpt-tiny"')
    assert main(["graph", spec, "-o", str(tmp_path / "g.svg"), "--expand", "h"]) == 0
    assert "built-in layout" in capsys.readouterr().err
    ET.parse(tmp_path / "g.svg")
    assert main(["graph", spec, "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert main(["graph", spec, "-o", str(tmp_path / "g.png")]) == 1
    assert "writing PNG needs Graphviz's `dot`, which is not installed" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()
    assert main(["graph", spec, "--expand", "nope"]) == 1
    assert "no block or repeated stack named nope (there are: h)" in capsys.readouterr().err


# -- the built-in layout's geometry: nothing overlaps -----------------------------------------------
LAYOUT_SPECS = ["gpt-tiny.toml", "bert-tiny.toml", "t5-tiny.toml", "bart-tiny.toml", "llama-tiny.toml",
                "transformer-tiny.toml", "bert-base-pretraining.toml"]


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _crosses(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float, float, float]) -> bool:
    """Whether segment p–q enters the inside of rectangle r (its border half a unit in): Liang–Barsky clipping."""
    x0, y0, x1, y1 = r[0] + 0.5, r[1] + 0.5, r[2] - 0.5, r[3] - 0.5
    dx, dy = q[0] - p[0], q[1] - p[1]
    lo, hi = 0.0, 1.0
    for step, room in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if step == 0:
            if room < 0:
                return False
        else:
            t = room / step
            lo, hi = (max(lo, t), hi) if step < 0 else (lo, min(hi, t))
    return lo < hi


def test_the_geometry_checks_can_fail() -> None:
    assert _crosses((0, 0), (10, 10), (4, 4, 6, 6)) and not _crosses((0, 0), (10, 0), (4, 4, 6, 6))
    assert not _crosses((5, 0), (5, 4), (4, 4, 6, 6))  # ends on the border
    assert _overlap((0, 0, 2, 2), (1, 1, 3, 3)) and not _overlap((0, 0, 1, 1), (1, 0, 2, 1))


@pytest.mark.parametrize("name", LAYOUT_SPECS)
@pytest.mark.parametrize("expand", [None, set()], ids=["expanded", "collapsed"])
def test_built_in_layout_has_no_overlaps_and_no_edge_through_a_box(name: str, expand: set[str] | None) -> None:
    lay = layout(view(specc.load_graph(SPECS / name), expand=expand))
    boxes = list(lay.boxes.items())
    labels = [label.rect() for label in lay.labels] + [label.rect() for _, label in lay.clusters]
    for i, (a, ra) in enumerate(boxes):
        for b, rb in boxes[i + 1:]:
            assert not _overlap(ra, rb), f"boxes {a} and {b} overlap"
    for i, la in enumerate(labels):
        for lb in labels[i + 1:]:
            assert not _overlap(la, lb), f"labels at {la} and {lb} overlap"
        for b, rb in boxes:
            assert not _overlap(la, rb), f"a label at {la} covers box {b}"
    for src, dst, points, tie in lay.edges:
        for p, q in zip(points, points[1:]):
            for b, rb in boxes:
                assert not _crosses(p, q, rb), f"edge {src} → {dst} runs through box {b}"
