"""The specc runtime: tokenizers, data, objectives, tasks, trainer, checkpoints.

It consumes what the compiler produces (a validated `ModelSpec` and its
`LayerGraph`) plus the spec's declarative runtime sections.
"""
