"""Semantic diff of two specs (or a spec and a checkpoint) at the level of the layer graph."""

from specc.diff.compare import diff_graphs
from specc.diff.render import render_markdown, render_text, summary_line, to_json
from specc.diff.types import Compat, GroupDelta, NodeChange, SpecDiff, TensorFit, ValueChange
from specc.diff.weights import compat_table, parse_mapping, source_name

__all__ = ["diff_graphs", "render_text", "render_markdown", "summary_line", "to_json", "compat_table", "parse_mapping",
           "source_name", "SpecDiff", "Compat", "GroupDelta", "NodeChange", "TensorFit", "ValueChange"]
