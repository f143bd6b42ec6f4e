"""LoRA fine-tuning end to end, at toy size, for every task type: a base run (2 steps from random init),
a LoRA run on top of it (2 steps), its checkpoint (adapters and head only, naming its base), `specc merge`,
and the merged and unmerged models' outputs agreeing; the base's weights stay frozen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from helpers import SPECS
from specc.compiler.adapt import adapter_names
from specc.runtime.runs import checkpoint
from specc.runtime.data.demos import DEMOS
from specc.runtime.errors import UserError
from specc.runtime.train.finetune import finetune, load_task_run
from specc.runtime.data.labelled import read_records
from specc.runtime.train.merge import merge_run

SMALL = ["params.layers=1", "params.d_model=32", "params.heads=2", "tokenizer.vocab_size=512", "data.max_documents=40"]
T5_SMALL = [*SMALL, "params.head_dim=16", "params.d_ff=64"]

# spec, task, demo, LoRA targets, parameters that train in full, extra settings
CASES = {
    "classification": ("bert-tiny-sentiment.toml", "sentiment", "sentiment", ["layer.*.attention.qkv", "layer.*.ffn.*"],
                       ["sentiment_head.*"], SMALL),
    "regression": ("bert-tiny-tasks.toml", "rating", "rating", ["*.qkv"], ["rating_head.*"], SMALL),
    "token_classification": ("bert-tiny-ner.toml", "ner", "ner", ["*.qkv", "*.o"], ["tag_head.*"], SMALL),
    "extractive_qa": ("bert-tiny-qa.toml", "qa", "qa", ["*.qkv", "*.fc_in"], ["span_head.*"],
                      [*SMALL, "tasks.qa.max_len=48", "tasks.qa.doc_stride=16", "tasks.qa.max_query_len=16"]),
    "translation (encoder-decoder)": ("t5-tiny-translate.toml", "translate", "translation",
                                      ["encoder.*.attn.qkv", "decoder.*.cross_attn.q", "*.ff.fc_in"], [],
                                      [*T5_SMALL, "tasks.translate.beam=1", "tasks.translate.max_new_tokens=6"]),
    "translation (decoder-only)": ("gpt-tiny-translate.toml", "translate", "translation", ["h.*.attn.qkv", "h.*.mlp.*"], [],
                                   [*SMALL, "tasks.translate.beam=1", "tasks.translate.max_new_tokens=6"]),
}


def _data(folder: Path, demo: str) -> tuple[Path, Path]:
    """A few of the demo's examples as JSONL files (a quick fine-tune needs few)."""
    splits = DEMOS[demo].build()
    paths = []
    for name, records in (("train", splits.train[:64]), ("validation", splits.validation[:4])):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r.fields) + "\n" for r in records))
        paths.append(path)
    return paths[0], paths[1]


def _sets(task: str, train: Path, val: Path, extra: list[str], steps: int, base: bool = True) -> list[str]:
    """Settings of a quick run: a base run (random init, tokenizer trained from [data]), or one from --from
    (which takes the pretrained run's tokenizer: no [tokenizer], [data] or `from` override may be given)."""
    if not base:
        extra = [s for s in extra if not s.startswith(("tokenizer.", "data."))]
    return [*extra, *([f'tasks.{task}.from=""'] if base else []), f'tasks.{task}.data.demo=""', f'tasks.{task}.data.train="{train}"',
            f'tasks.{task}.data.validation="{val}"', f"tasks.{task}.train.steps={steps}", f"tasks.{task}.train.warmup=0",
            f"tasks.{task}.train.eval_every={steps}", f"tasks.{task}.train.save_every={steps}",
            f"tasks.{task}.train.batch_size=4", f"tasks.{task}.train.lr=0.01"]


def _lora(targets: list[str], train: list[str]) -> list[str]:
    return [f"adapters.lora.targets={json.dumps(targets)}", "adapters.lora.rank=2", "adapters.lora.alpha=4",
            "adapters.lora.dropout=0.1", f"adapters.lora.train={json.dumps(train)}"]


def _outputs(run: Path, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    loaded = load_task_run(run, "cpu")
    with torch.no_grad():
        out = loaded.model(**inputs)
        return {k: out[k].float() for k in loaded.setup.graph.outputs}


def _inputs(run: Path) -> dict[str, torch.Tensor]:
    """A batch of model inputs of the run's task (its validation examples, encoded)."""
    loaded = load_task_run(run, "cpu")
    feats = loaded.runner.encode(read_records(Path(loaded.setup.task.params.data.validation), "auto"), gold=True)
    return loaded.runner.collate(feats[:3]).inputs


@pytest.mark.parametrize("case", list(CASES))
def test_lora_finetune_checkpoint_and_merge(case: str, tmp_path: Path) -> None:
    spec, task, demo, targets, full, extra = CASES[case]
    train, val = _data(tmp_path, demo)
    say = lambda s: None  # noqa: E731
    finetune(str(SPECS / spec), None, str(tmp_path / "base"), task, _sets(task, train, val, extra, 2), quiet=True, say=say)
    lines: list[str] = []
    finetune(str(SPECS / spec), str(tmp_path / "base"), str(tmp_path / "lora"), task,
             _sets(task, train, val, extra, 2, base=False) + _lora(targets, full), quiet=True, say=lines.append)
    assert any(line.startswith("LoRA rank 2 on ") and "frozen" in line for line in lines), lines

    base_ckpt, lora_ckpt = checkpoint.require_latest(tmp_path / "base"), checkpoint.require_latest(tmp_path / "lora")
    state = checkpoint.load_state(lora_ckpt)
    assert Path(state.base_ckpt) == base_ckpt.resolve() and state.base_hash == checkpoint.load_state(base_ckpt).arch_hash
    with safe_open(str(lora_ckpt / "model.safetensors"), "pt") as fh:
        stored = set(fh.keys())
    adapted = load_task_run(tmp_path / "lora", "cpu")
    lora_names = set(adapter_names(adapted.model))
    assert lora_names and lora_names <= stored  # every adapter, and besides them only what trains in full
    assert all(any(n.startswith(p.rstrip("*")) for p in full) for n in stored - lora_names), stored - lora_names

    # Frozen: the base weights of the adapted model are the base run's, bit for bit.
    base = load_task_run(tmp_path / "base", "cpu")
    base_params = dict(base.model.named_parameters())
    for name, p in adapted.model.named_parameters():
        if name not in stored:
            assert torch.equal(p, base_params[name]), name

    merged_ckpt, layers = merge_run(tmp_path / "lora", tmp_path / "merged")
    assert layers == len(adapted.setup.graph.adapters.layers)  # type: ignore[union-attr]
    assert "adapters" not in json.loads((merged_ckpt / "spec.json").read_text())
    assert not checkpoint.load_state(merged_ckpt).base_ckpt
    inputs = _inputs(tmp_path / "lora")
    unmerged, merged, before = (_outputs(tmp_path / r, inputs) for r in ("lora", "merged", "base"))
    for key in unmerged:
        assert torch.allclose(unmerged[key], merged[key], atol=1e-5, rtol=1e-4), key
    # The adapters changed what the model computes (so the agreement above is not the base agreeing with itself).
    assert any(not torch.allclose(unmerged[k], before[k], atol=1e-4) for k in unmerged)


def test_adapters_need_a_pretrained_run(tmp_path: Path) -> None:
    spec, task, demo, targets, full, extra = CASES["classification"]
    train, val = _data(tmp_path, demo)
    with pytest.raises(UserError, match=r"declares \[adapters\], which train on top of pretrained weights"):
        finetune(str(SPECS / spec), None, str(tmp_path / "lora"), task, _sets(task, train, val, extra, 2) + _lora(targets, full),
                 quiet=True, say=lambda s: None)
    assert not (tmp_path / "lora").exists()


def test_a_lora_run_resumes_and_needs_its_base(tmp_path: Path) -> None:
    spec, task, demo, targets, full, extra = CASES["classification"]
    train, val = _data(tmp_path, demo)
    say = lambda s: None  # noqa: E731
    finetune(str(SPECS / spec), None, str(tmp_path / "base"), task, _sets(task, train, val, extra, 2), quiet=True, say=say)
    sets = _sets(task, train, val, extra, 4, base=False) + _lora(targets, full)
    sets = [s for s in sets if "save_every" not in s] + [f"tasks.{task}.train.save_every=2", f"tasks.{task}.train.schedule=constant"]
    finetune(str(SPECS / spec), str(tmp_path / "base"), str(tmp_path / "whole"), task, sets, quiet=True, say=say)
    halted = [s for s in sets if ".steps=" not in s] + [f"tasks.{task}.train.steps=2"]
    finetune(str(SPECS / spec), str(tmp_path / "base"), str(tmp_path / "part"), task, halted, quiet=True, say=say)
    finetune(str(SPECS / spec), None, None, task, sets, resume=str(tmp_path / "part"), quiet=True, say=say)
    whole = dict(load_task_run(tmp_path / "whole", "cpu", last=True).model.named_parameters())
    for name, p in load_task_run(tmp_path / "part", "cpu", last=True).model.named_parameters():
        assert torch.allclose(p, whole[name], atol=1e-6), name

    for d in (tmp_path / "base" / "checkpoints").iterdir():
        (d / checkpoint.MARKER).unlink()
    with pytest.raises(UserError, match="no longer a complete checkpoint.*specc merge"):
        load_task_run(tmp_path / "whole", "cpu")
