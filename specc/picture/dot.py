"""A `View` as Graphviz DOT text, and DOT rendered by Graphviz's `dot` when it is installed."""

from __future__ import annotations

import shutil
import subprocess

from specc.diagnostics import UserError
from specc.picture.view import View

_STYLE = {
    "input": 'shape=ellipse, style=filled, fillcolor="#e8f0fe"',
    "output": 'shape=ellipse, style=filled, fillcolor="#e6f4ea"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "block": 'shape=box3d, style=filled, fillcolor="#fef7e0"',
}


def to_dot(v: View) -> str:
    lines = [f"digraph {_q(v.title)} {{", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#5f6368"];']
    for box in v.boxes:
        if box.cluster is None:
            lines.append(f"  {_q(box.id)} [label={_label(box.lines)}, {_STYLE[box.kind]}];")
    for cid, label in v.clusters.items():
        lines.append(f"  subgraph {_q('cluster_' + cid)} {{")
        lines.append(f'    label={_q(label)}; style="rounded,dashed"; color="#9aa0a6";')
        for box in v.boxes:
            if box.cluster == cid:
                lines.append(f"    {_q(box.id)} [label={_label(box.lines)}, {_STYLE[box.kind]}];")
        lines.append("  }")
    for e in v.edges:
        style = ', style=dashed, arrowhead=none, constraint=false' if e.tie else ""
        lines.append(f"  {_q(e.src)} -> {_q(e.dst)} [label={_q(e.label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    """A DOT string: backslashes and quotes escaped, line breaks as DOT's centred `\\n`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _label(lines: list[str]) -> str:
    return _q("\n".join(line for line in lines if line))


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render_with_graphviz(dot: str, fmt: str) -> bytes:
    """`dot -T<fmt>`; a missing or failing Graphviz is a user error that says what to do."""
    exe = shutil.which("dot")
    if exe is None:
        raise UserError(f"writing {fmt.upper()} needs Graphviz's `dot`, which is not installed "
                        "(apt install graphviz, brew install graphviz, or conda install graphviz); "
                        "write .svg (drawn by specc itself) or .dot instead")
    done = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, timeout=300)
    if done.returncode != 0:
        raise UserError(f"Graphviz failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
