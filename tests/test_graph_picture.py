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
