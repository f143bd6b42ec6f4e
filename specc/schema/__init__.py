"""Schema stage: `validate(RawSpec) -> ModelSpec`."""

from specc.schema.model import FORMAT_VERSION, BlockSpec, NodeSpec
from specc.schema.validate import GraphSpec, ModelSpec, TensorType, resolve_params, validate

__all__ = ["FORMAT_VERSION", "BlockSpec", "NodeSpec", "GraphSpec", "ModelSpec", "TensorType", "resolve_params", "validate"]
