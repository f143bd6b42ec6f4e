"""Training parity of the encoder-decoders: specc's T5 and BART train step for step like `transformers`' own.

Like the GPT-2 test beside it (test_train_parity.py), each case runs the real
specc job (`specc finetune` of a translation task, or `specc train` with BART's
denoising objective) and, beside it, a plain loop that trains the matching
`transformers` class (`T5ForConditionalGeneration`, `BartForConditionalGeneration`)
from specc's initial weights (exported through `specc.hf`), on the same batches
in the same order, with the same AdamW groups, schedule and clipping, fp32,
dropout 0. Every step's loss must agree within a relative 1e-4: the two
implementations are the same function, so a gap between them on real data is
in the recipe, never in the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hf_twin import replay, same_adamw
from runtools import SPECS, metrics

from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph import LayerGraph
from specc.hf import ARCHITECTURES
from specc.hf.weights import export_state_dict
from specc.runtime.runs import checkpoint
from specc.runtime.config import TrainConfig
from specc.runtime.data.demos.grammar import translation_pair
from specc.runtime.train.finetune import finetune, task_setup
from specc.runtime.train.jobs import train
from specc.runtime.train.loop import BatchSource
from specc.runtime.batch import Batch
from specc.runtime.data.prepare import token_store
from specc.runtime.train.session import plan_from_spec, tokenizer_for
from specc.runtime.tasks import load_splits
from specc.runtime.tasks.base import epoch_index
from specc.runtime.data.tokenizer import TextTokenizer
from specc.schema import validate

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 12
TRAIN = [f"train.steps={STEPS}", "train.batch_size=8", "train.lr=3e-3", "train.warmup=3", "train.schedule=linear",
         "train.weight_decay=0.01", "train.clip=1.0", "train.log_every=1", "train.eval_every=1000", "train.save_every=1000"]
T5_SMALL = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.head_dim=16", "params.d_ff=64",
            "params.vocab=512", "params.dropout=0.0"]
BART_SMALL = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.d_ff=64", "params.vocab=512",
              "params.dropout=0.0", "params.attention_dropout=0.0", "params.activation_dropout=0.0"]


def t5_config(p: dict[str, Any]) -> Any:
    return transformers.T5Config(
        vocab_size=p["vocab"], d_model=p["d_model"], d_kv=p["head_dim"], num_heads=p["heads"], d_ff=p["d_ff"],
        num_layers=p["layers"], relative_attention_num_buckets=p["buckets"], dropout_rate=0.0,
        relative_attention_max_distance=p["max_distance"], layer_norm_epsilon=p["eps"], feed_forward_proj="relu",
        tie_word_embeddings=True, decoder_start_token_id=0, pad_token_id=0)


def bart_config(p: dict[str, Any]) -> Any:
    return transformers.BartConfig(
        vocab_size=p["vocab"], d_model=p["d_model"], encoder_layers=p["layers"], decoder_layers=p["layers"],
        encoder_attention_heads=p["heads"], decoder_attention_heads=p["heads"], encoder_ffn_dim=p["d_ff"],
        decoder_ffn_dim=p["d_ff"], max_position_embeddings=p["max_seq"], activation_function="gelu", dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, scale_embedding=False, tie_word_embeddings=True)


HF = {"t5": (lambda: transformers.T5ForConditionalGeneration, t5_config),
      "bart": (lambda: transformers.BartForConditionalGeneration, bart_config)}


def hf_twin(arch: str, graph: LayerGraph, cfg: TrainConfig) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The `transformers` model holding specc's initial weights, and AdamW over the same decay groups."""
    hf_class, config = HF[arch]
    hf = hf_class()(config(dict(graph.spec.params)))
    for module in hf.modules():  # specc's embeddings train every row; BART's would freeze its padding row
        if isinstance(module, torch.nn.Embedding):
            module.padding_idx = None
    init = compile_model(graph)  # the trainer's init: a pure function of the spec's seed
    rules = ARCHITECTURES[arch](list(hf.state_dict()))
    missing, unexpected = hf.load_state_dict(export_state_dict(init, rules), strict=False)
    tied = {"lm_head.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight",  # all one tensor
            "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
    assert not unexpected and set(missing) <= tied | {"final_logits_bias"}, (missing, unexpected)  # bias: zeros
    assert hf.get_input_embeddings().weight is hf.get_output_embeddings().weight
    return hf, same_adamw(hf, init, rules, cfg)


def hf_loss(hf: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of the target tokens, with the padding masks specc's model reads."""
    x = batch.inputs
    logits = hf(input_ids=x["src"], attention_mask=x.get("src_mask"), decoder_input_ids=x["tgt"],
                decoder_attention_mask=x.get("tgt_mask")).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch.targets["labels"].reshape(-1))


def pairs_file(path: Path, n: int, seed: int) -> str:
    """`n` demo English→German pairs as a headed TSV (the format a user's parallel corpus comes in)."""
    import random

    rng = random.Random(seed)
    path.write_text("src\ttgt\n" + "".join("\t".join(translation_pair(rng)) + "\n" for _ in range(n)))
    return str(path)


def finetune_sets(tmp_path: Path, small: list[str]) -> list[str]:
    data = [f'tasks.translate.data.train="{pairs_file(tmp_path / "train.tsv", 96, 1)}"',
            f'tasks.translate.data.validation="{pairs_file(tmp_path / "val.tsv", 4, 2)}"',
            'tasks.translate.data.demo=""', 'tasks.translate.from=""', "data.max_documents=40",
            "tasks.translate.beam=1", "tasks.translate.max_new_tokens=8"]
    return small + data + [f"tasks.translate.{s}" for s in TRAIN]


CASES: dict[str, tuple[str, str, list[str]]] = {  # spec, HF family, small model
    "t5": ("t5-tiny-translate.toml", "t5", T5_SMALL),
    "bart": ("bart-tiny-translate.toml", "bart", BART_SMALL),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_translation_finetune_matches_transformers(case: str, tmp_path: Path) -> None:
    spec_file, arch, small = CASES[case]
    sets = finetune_sets(tmp_path, small)
    run = tmp_path / "run"
    finetune(str(SPECS / spec_file), out=str(run), sets=sets, random_init=True, quiet=True, say=lambda line: None)
    logged = [line for line in metrics(run) if "loss" in line]
    assert [line["step"] for line in logged] == list(range(1, STEPS + 1))

    setup = task_setup(validate(parse(SPECS / spec_file, sets)), SPECS, None)
    cfg = setup.task.params.train
    tok = TextTokenizer.load(checkpoint.require_latest(run) / "tokenizer.json")
    runner = setup.task.type.runner(setup.task.name, setup.task.params, setup.graph, tok, None)
    features = runner.encode(load_splits(setup.task, SPECS).train, gold=True)
    order: dict[int, Any] = {}

    def batches() -> Iterator[Batch]:  # the trainer's order: a fresh seeded permutation each epoch
        for step in range(STEPS):
            first = step * cfg.batch_size
            yield runner.collate([features[epoch_index(k, len(features), cfg.seed, order)]
                                  for k in range(first, first + cfg.batch_size)])

    hf, optimizer = hf_twin(arch, setup.graph, cfg)
    replay(hf, optimizer, cfg, batches(), logged, hf_loss)


def test_bart_denoising_pretraining_matches_transformers(tmp_path: Path) -> None:
    spec = str(SPECS / "bart-tiny.toml")
    sets = BART_SMALL + ["data.max_documents=40", "train.seq_len=48", "train.eval_batches=1", "train.sample_tokens=0",
                         *(f"train.{s.split('.', 1)[1]}" for s in TRAIN)]
    run = tmp_path / "run"
    train(spec, str(run), None, sets, quiet=True, say=lambda line: None)
    logged = [line for line in metrics(run) if "loss" in line]
    assert [line["step"] for line in logged] == list(range(1, STEPS + 1))

    plan = plan_from_spec(spec, sets)
    cfg = plan.config.train
    corpus = plan.corpus()
    tok = tokenizer_for(plan, corpus)
    source = BatchSource(plan.objectives, token_store(corpus, "train", tok), tok, cfg.seq_len, cfg.seed)
    batches: Callable[[], Iterator[Batch]] = lambda: (source.get(s * cfg.batch_size, cfg.batch_size) for s in range(STEPS))
    hf, optimizer = hf_twin("bart", plan.graph, cfg)
    replay(hf, optimizer, cfg, batches(), logged, hf_loss)
