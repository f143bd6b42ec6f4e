"""The loss-curve picture written next to a run's checkpoints (matplotlib is optional)."""

from __future__ import annotations

import json
from pathlib import Path


def write_loss_curve(metrics: Path, out: Path) -> str:
    """Plot train and validation loss from `metrics.jsonl`; returns a line saying what happened."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "loss curve: matplotlib is not installed (pip install 'specc[plot]'); metrics are in " + str(metrics)
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train loss")
    if val:
        ax.plot(*zip(*val), marker="o", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return f"loss curve: {out}"
