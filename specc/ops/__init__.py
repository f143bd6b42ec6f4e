"""The layer library. Importing this package registers every op's record (no torch: see `specc.ops.base`)."""

from specc.ops import records  # noqa: F401  (registration)
from specc.ops.base import REGISTRY, OpRecord, Shape, ShapeError
from specc.ops.cache import KVCache

__all__ = ["REGISTRY", "OpRecord", "Shape", "ShapeError", "KVCache"]
