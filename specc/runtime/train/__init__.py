"""Training: the step loop, optimizers, guards, sessions, pretraining and fine-tuning, merging, loading a run.

The top of the runtime: it may use every other runtime group; the CLI sits above it.
"""
