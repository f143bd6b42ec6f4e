"""Inference: greedy and sampled generation and beam search over a compiled model."""
