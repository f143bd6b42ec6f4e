"""The ops' records: parameter schemas, shape rules, parameter shapes and FLOPs, with no torch.

Importing this package registers every op in `specc.ops.base.REGISTRY`. The
modules that run an op (`specc.ops.attention`, ...) are imported only when a
model is built.
"""

from specc.ops.records import attention, basic, embedding, ffn, heads  # noqa: F401  (registration)
