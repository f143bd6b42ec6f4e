"""The loss-curve picture written next to a run's checkpoints (matplotlib is optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specc import jsonfile


def write_loss_curve(metrics: Path, out: Path) -> str:
    """Plot train and validation loss from `metrics.jsonl`; returns a line saying what happened."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "loss curve: matplotlib is not installed (pip install 'specc[plot]'); metrics are in " + str(metrics)
    rows = _records(metrics)
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


def _records(metrics: Path) -> list[dict[str, Any]]:
    """The metrics records with a step (a torn or foreign line is the resume's to repair, not the picture's)."""
    rows = []
    for line in metrics.read_bytes().splitlines():
        try:
            row = jsonfile.parse(line) if line.strip() else None
        except jsonfile.BadJSON:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
    return rows
