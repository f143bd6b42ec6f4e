"""Training parity: specc's trainer and Hugging Face `GPT2LMHeadModel` follow the same loss curve.

The tiny GPT is trained for 20 steps by the real `specc train` job. Beside it,
a plain loop trains `transformers`' GPT-2 from the same initial weights
(specc's init, exported through `specc.hf`), on the same batches (the
runtime's `BatchSource` over the same packed token store), with the same
optimizer settings: AdamW with the same betas, eps and weight-decay
exclusions, the same warmup + cosine schedule, gradient clipping, fp32,
dropout 0. Each step's loss must agree within a relative 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from specc.runtime.data.prepare import token_store
from specc.runtime.train.jobs import train
from specc.runtime.train.loop import BatchSource
from specc.runtime.train.session import plan_from_spec, tokenizer_for
from hf_twin import replay, same_adamw
from runtools import GPT_TINY, metrics
from specc.runtime.objectives import Batch
from specc.compiler import compile_model
from specc.hf import ARCHITECTURES
from specc.hf.weights import export_state_dict

transformers = pytest.importorskip("transformers")

STEPS = 20
SETS = [  # `--set` overrides of gpt-tiny.toml: 2 layers of width 32, no dropout, 20 steps of 4 x 32 tokens
    "data.max_documents=12", "params.layers=2", "params.d_model=32", "params.heads=2", "params.vocab=512", "params.max_seq=64",
    "params.dropout=0.0",
    f"train.steps={STEPS}", "train.batch_size=4", "train.seq_len=32", "train.lr=3e-3", "train.warmup=5",
    "train.schedule=cosine", "train.weight_decay=0.1", "train.clip=1.0", "train.log_every=1", "train.eval_every=100",
    "train.eval_batches=1", "train.save_every=100", "train.sample_tokens=0",
]


def gpt2_like(params: dict) -> torch.nn.Module:
    config = transformers.GPT2Config(
        vocab_size=params["vocab"], n_embd=params["d_model"], n_layer=params["layers"], n_head=params["heads"],
        n_inner=params["d_ff"], n_positions=params["max_seq"], layer_norm_epsilon=params["eps"],
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=None, eos_token_id=None,
    )
    return transformers.GPT2LMHeadModel(config)


def test_twenty_steps_match_gpt2lmheadmodel(tmp_path: Path) -> None:
    # -- specc: the real training job, one metrics line per step --------------------------------------------
    out = tmp_path / "run"
    train(GPT_TINY, str(out), None, SETS, quiet=True, say=lambda line: None)
    ours = [line for line in metrics(out) if "loss" in line]
    assert [line["step"] for line in ours] == list(range(1, STEPS + 1))

    # -- the same model as GPT2LMHeadModel, from specc's initial weights ------------------------------------
    plan = plan_from_spec(GPT_TINY, SETS)
    cfg = plan.config.train
    init = compile_model(plan.graph)  # the trainer's init: a pure function of the spec's seed
    hf = gpt2_like(plan.spec.params)
    rules = ARCHITECTURES["gpt2"](list(hf.state_dict()))
    missing, unexpected = hf.load_state_dict(export_state_dict(init, rules), strict=False)
    assert set(missing) <= {"lm_head.weight"} and not unexpected, (missing, unexpected)
    assert hf.lm_head.weight is hf.transformer.wte.weight  # tied, like the spec's lm_head

    optimizer = same_adamw(hf, init, rules, cfg)  # a parameter decays iff the specc one it maps to does

    # the same batches, in the same order
    corpus = plan.corpus()
    tok = tokenizer_for(plan, corpus)
    source = BatchSource(plan.objectives, token_store(corpus, "train", tok), tok, cfg.seq_len, cfg.seed)

    batches = (source.get(step * cfg.batch_size, cfg.batch_size) for step in range(STEPS))
    replay(hf, optimizer, cfg, batches, ours, causal_lm_loss)


def causal_lm_loss(hf: torch.nn.Module, batch: Batch) -> torch.Tensor:
    logits = hf(input_ids=batch.inputs["tokens"]).logits  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch.targets["labels"].reshape(-1))
