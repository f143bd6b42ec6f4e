"""Runs: checkpoints, run logs, lineage, weight transfer between runs, interop with other checkpoint formats."""
