"""TensorBoard events are written next to metrics.jsonl when [train] loggers names "tensorboard"."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.runtime.train.jobs import train
from runtools import GPT_TINY, TINY

pytest.importorskip("tensorboard")


def test_training_writes_tensorboard_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    overrides = [s for s in TINY if not s.startswith("train.steps")] + ["train.steps=6", "train.eval_every=3",
                                                                                'train.loggers=["tensorboard"]']
    train(GPT_TINY, str(out), None, overrides, quiet=True, say=lambda _: None)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "lr", "val_loss"} <= tags
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4, 5, 6]
