"""The ops' records: parameter schemas, shape rules, parameter shapes and FLOPs, with no torch.

Importing this package registers every op in `specc.ops.base.REGISTRY`. The
modules that run an op (`specc.ops.attention`, ...) are imported only when a
model is built.
"""

from specc.ops.base import REGISTRY
from specc.ops.records import attention, basic, embedding, ffn, heads  # noqa: F401  (registration)

REGISTRY.complete(__name__, __path__)  # a records module missing from the line above fails here
