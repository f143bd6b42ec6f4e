"""Pictures of a layer graph: a `View` (blocks collapsed or expanded) as DOT, and as SVG drawn by specc itself."""

from specc.picture.dot import graphviz_available, render_with_graphviz, to_dot
from specc.picture.svg import to_svg
from specc.picture.view import Box, Edge, View, view

__all__ = ["view", "View", "Box", "Edge", "to_dot", "to_svg", "graphviz_available", "render_with_graphviz"]
