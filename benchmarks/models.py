"""The benchmark's models: one shape, three implementations, one set of weights.

`Shape` names a size (the issue's small shape, or the published base
sizes). `build` makes the `transformers` model from a config that mirrors the
reference spec, compiles the spec with `--set` overrides of that shape, copies
the `transformers` weights into it through `specc.hf`, and copies those into
the hand-written model, so every variant starts from the same numbers and
computes the same loss.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import specc
from specc.compiler import SpecModel
from specc.graph import LayerGraph
from specc.hf import load_hf_state_dict

from benchmarks import reference

SPECS = Path(__file__).resolve().parent.parent / "specs"
FAMILY_SPEC = {"gpt": "gpt2-small.toml", "bert": "bert-base-pretraining.toml", "t5": "t5-small.toml"}


@dataclass(frozen=True)
class Shape:
    """A model size and a batch: `batch` sequences of `seq` tokens (T5: `seq` source, `tgt_seq` target)."""

    name: str
    vocab: int
    d_model: int
    layers: int
    heads: int
    d_ff: int
    batch: int
    seq: int
    max_seq: int = 512
    tgt_seq: int = 32
    dropout: float = 0.0

    def sets(self, family: str) -> list[str]:
        """`--set` overrides that give the family's reference spec this shape."""
        sets = [f"params.vocab={self.vocab}", f"params.d_model={self.d_model}", f"params.layers={self.layers}",
                f"params.heads={self.heads}", f"params.d_ff={self.d_ff}", f"params.dropout={self.dropout}"]
        if family == "t5":
            return sets + [f"params.head_dim={self.d_model // self.heads}"]
        if family == "gpt":  # GPT-2's function through PyTorch's fused kernel, as the hand-written model has it;
            # gpt2-small.toml keeps `gelu_new`, which rounds as transformers does (specc/ops/layers.py)
            sets.append("blocks.decoder_layer.nodes.mlp.activation=gelu_tanh")
        return sets + [f"params.max_seq={self.max_seq}"]

    def with_(self, **changes: Any) -> Shape:
        return replace(self, **changes)


# The measured shape: hidden 256, 4 layers, 4 heads, FFN 1024, vocab 8192, batch 8 x 128 tokens.
SMALL = Shape("small", vocab=8192, d_model=256, layers=4, heads=4, d_ff=1024, batch=8, seq=128, max_seq=256)
TINY = Shape("tiny", vocab=256, d_model=32, layers=2, heads=2, d_ff=64, batch=2, seq=16, max_seq=32, tgt_seq=8)
BASE = {  # published sizes
    "gpt": Shape("base", vocab=50257, d_model=768, layers=12, heads=12, d_ff=3072, batch=4, seq=256, max_seq=1024),
    "bert": Shape("base", vocab=30522, d_model=768, layers=12, heads=12, d_ff=3072, batch=4, seq=256, max_seq=512),
    "t5": Shape("base", vocab=32128, d_model=512, layers=6, heads=8, d_ff=2048, batch=4, seq=256, tgt_seq=64),
}


def hf_config(family: str, s: Shape, attn: str) -> Any:
    transformers: Any = importlib.import_module("transformers")  # untyped here: v5's config classes take **kwargs

    if family == "gpt":
        return transformers.GPT2Config(
            vocab_size=s.vocab, n_embd=s.d_model, n_layer=s.layers, n_head=s.heads, n_inner=s.d_ff, n_positions=s.max_seq,
            layer_norm_epsilon=1e-5, activation_function="gelu_new", resid_pdrop=s.dropout, embd_pdrop=s.dropout,
            attn_pdrop=s.dropout, bos_token_id=None, eos_token_id=None, attn_implementation=attn)
    if family == "bert":
        return transformers.BertConfig(
            vocab_size=s.vocab, hidden_size=s.d_model, num_hidden_layers=s.layers, num_attention_heads=s.heads,
            intermediate_size=s.d_ff, max_position_embeddings=s.max_seq, type_vocab_size=2, layer_norm_eps=1e-12,
            hidden_act="gelu", hidden_dropout_prob=s.dropout, attention_probs_dropout_prob=s.dropout,
            attn_implementation=attn)
    return transformers.T5Config(
        vocab_size=s.vocab, d_model=s.d_model, d_kv=s.d_model // s.heads, num_heads=s.heads, d_ff=s.d_ff,
        num_layers=s.layers, relative_attention_num_buckets=32, relative_attention_max_distance=128,
        layer_norm_epsilon=1e-6, feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=s.dropout,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, attn_implementation=attn)


def hf_class(family: str, task: str) -> Any:
    import transformers

    if family == "gpt":
        return transformers.GPT2LMHeadModel
    if family == "bert":
        return transformers.BertForPreTraining if task == "pretraining" else transformers.BertForMaskedLM
    return transformers.T5ForConditionalGeneration


def hf_model(family: str, s: Shape, attn: str, task: str = "") -> nn.Module:
    torch.manual_seed(0)
    return hf_class(family, task)(hf_config(family, s, attn))


def graph(family: str, s: Shape) -> LayerGraph:
    return specc.load_graph(SPECS / FAMILY_SPEC[family], s.sets(family))


@dataclass
class Trio:
    """The same weights in `transformers` (eager and sdpa attention), specc, and the hand-written model."""

    graph: LayerGraph
    specc: SpecModel
    hf: dict[str, nn.Module]  # attention implementation → model
    ref: nn.Module | None


def build(family: str, s: Shape, task: str = "", attns: tuple[str, ...] = ("eager", "sdpa"), device: str = "cpu") -> Trio:
    g = graph(family, s)
    source = hf_model(family, s, "sdpa", "pretraining" if family == "bert" else task)  # BertForPreTraining has every BERT tensor
    ours = specc.compile_model(g)
    load_hf_state_dict(ours, source.state_dict())
    state = source.state_dict()
    hf: dict[str, nn.Module] = {}
    for attn in attns:
        model = hf_model(family, s, attn, task)
        missing, unexpected = model.load_state_dict(state, strict=False)  # BertForMaskedLM: a subset of the tensors
        assert not missing or set(missing) <= {"lm_head.weight", "cls.predictions.decoder.weight"}, missing
        hf[attn] = model.to(device)
    dims = reference.Dims(s.vocab, s.d_model, s.layers, s.heads, s.d_ff, s.max_seq, 1e-5 if family == "gpt" else 1e-12)
    ref: nn.Module | None = None
    if family == "gpt":
        ref = reference.RefGPT(dims)
        reference.load_from_specc(ref, ours, reference.gpt_names(dims))
    elif family == "bert":
        ref = reference.RefBERT(dims)
        reference.load_from_specc(ref, ours, reference.bert_names(dims))
    return Trio(g, ours.to(device), hf, ref.to(device) if ref is not None else None)
