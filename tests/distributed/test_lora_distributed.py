"""A LoRA fine-tune on 2 CPU processes (DDP, and FSDP2) trains what 1 process trains: the same adapter and
head tensors (no dropout, so every process draws nothing at random), stored alone in each checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from specc.runtime.data.demos import DEMOS

SPEC = "specs/bert-tiny-sentiment.toml"
T = "sentiment"


def _sets(folder: Path, base: bool = True) -> list[str]:
    """Settings of the base run, or (base=False) of a run from it: no [tokenizer], [data] or `from` override."""
    splits = DEMOS["sentiment"].build()
    for name, records in (("train", splits.train[:64]), ("val", splits.validation[:8])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r.fields) + "\n" for r in records))
    values = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.dropout=0.0",
              "model.nodes.sentiment_head.dropout=0.0",
              *(["tokenizer.vocab_size=512", "data.max_documents=40", f'tasks.{T}.from=""'] if base else []),
              f'tasks.{T}.data.demo=""', f'tasks.{T}.data.train="{folder / "train.jsonl"}"',
              f'tasks.{T}.data.validation="{folder / "val.jsonl"}"', f"tasks.{T}.train.steps=4", f"tasks.{T}.train.batch_size=4",
              f"tasks.{T}.train.eval_every=4", f"tasks.{T}.train.save_every=4", f"tasks.{T}.train.lr=0.01",
              f"tasks.{T}.train.warmup=0"]
    return [arg for v in values for arg in ("--set", v)]


LORA = ["--set", 'adapters.lora.targets=["layer.*.attention.qkv"]', "--set", "adapters.lora.rank=2",
        "--set", 'adapters.lora.train=["sentiment_head.*"]']


def _stored(run: Path) -> dict:
    return load_file(str(next((run / "checkpoints").iterdir()) / "model.safetensors"))


@pytest.mark.slow  # five launches, two of them torchrun: about 3 minutes on a busy 2-core machine
def test_lora_under_ddp_and_fsdp_trains_what_one_process_trains(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = cli("finetune", SPEC, "--out", str(tmp_path / "base"), "--quiet", *_sets(tmp_path))
    assert done.returncode == 0, done.stderr
    runs = {"one": [], "ddp": ["--nproc", "2"], "fsdp": ["--nproc", "2", "--set", f'tasks.{T}.train.parallel="fsdp"']}
    for name, extra in runs.items():
        done = cli("finetune", SPEC, "--from", str(tmp_path / "base"), "--out", str(tmp_path / name), "--quiet",
                   *_sets(tmp_path, base=False), *LORA, *extra, timeout=300)
        assert done.returncode == 0, done.stderr
    one = _stored(tmp_path / "one")
    assert sorted(one) == ["layer.0.attention.qkv.lora.a", "layer.0.attention.qkv.lora.b",
                           "sentiment_head.out.bias", "sentiment_head.out.weight"]
    assert one["layer.0.attention.qkv.lora.b"].abs().max() > 1e-3  # the adapters trained
    for name in ("ddp", "fsdp"):
        other = _stored(tmp_path / name)
        assert other.keys() == one.keys()
        assert max(float((other[k] - one[k]).abs().max()) for k in one) <= 1e-6, name


pytestmark = pytest.mark.usefixtures("cli_env")
