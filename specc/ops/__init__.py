"""The layer library. Importing this package registers every op."""

from specc.ops import attention, basic, embedding, ffn, heads  # noqa: F401  (registration)
from specc.ops.base import REGISTRY, OpRecord, Shape, ShapeError
from specc.ops.cache import KVCache

__all__ = ["REGISTRY", "OpRecord", "Shape", "ShapeError", "KVCache"]
