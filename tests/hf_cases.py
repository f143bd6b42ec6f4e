"""Shared cases of the Hugging Face interop tests: tiny configs in code, batches with padding, comparisons.

Each `Case` is one `transformers` class at tiny size (random init, no
downloads): how to build it, what to feed both models, and which outputs must
agree. `FULL` holds the published configurations for the slow tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

TOL = 1e-5
V = 120  # tiny vocabulary: ids 3.. are ordinary tokens, 0-2 are specials (pad 0 or 1)


@dataclass(frozen=True)
class Case:
    id: str
    cls: str  # transformers class
    config: Callable[[], Any]
    kind: str  # "encoder", "decoder", "seq2seq"
    segments: bool = False  # the spec takes token types
    pad: int = 0  # pad id written into padded positions
    extra: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return getattr(transformers, self.cls)(self.config()).eval()


def _bert(**kw: Any) -> Callable[[], Any]:
    return lambda: transformers.BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                           intermediate_size=64, max_position_embeddings=40, **kw)


def _roberta(**kw: Any) -> Callable[[], Any]:
    return lambda: transformers.RobertaConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                              intermediate_size=64, max_position_embeddings=42, type_vocab_size=1,
                                              layer_norm_eps=1e-5, pad_token_id=1, **kw)


def _distilbert() -> Any:
    return transformers.DistilBertConfig(vocab_size=V, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                         max_position_embeddings=40)


def _gpt2(**kw: Any) -> Callable[[], Any]:
    return lambda: transformers.GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=40,
                                           bos_token_id=2, eos_token_id=2, **kw)


def _llama(**kw: Any) -> Callable[[], Any]:
    return lambda: transformers.LlamaConfig(**{
        "vocab_size": V, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 48, "max_position_embeddings": 64, "bos_token_id": 1, "eos_token_id": 2, **kw})


def _t5(**kw: Any) -> Callable[[], Any]:
    return lambda: transformers.T5Config(vocab_size=V, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                         decoder_start_token_id=0, **kw)


def _bart(**kw: Any) -> Callable[[], Any]:
    return lambda: transformers.BartConfig(**{
        "vocab_size": V, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 40, **kw})


CASES = [
    Case("bert", "BertModel", _bert(), "encoder", segments=True),
    Case("bert-mlm", "BertForMaskedLM", _bert(hidden_act="gelu_new", attention_probs_dropout_prob=0.2), "encoder", segments=True),
    Case("bert-pretraining", "BertForPreTraining", _bert(), "encoder", segments=True),
    Case("roberta", "RobertaModel", _roberta(), "encoder", segments=True, pad=1),
    Case("roberta-mlm", "RobertaForMaskedLM", _roberta(), "encoder", segments=True, pad=1),
    Case("distilbert", "DistilBertModel", _distilbert, "encoder"),
    Case("distilbert-mlm", "DistilBertForMaskedLM", _distilbert, "encoder"),
    Case("gpt2", "GPT2LMHeadModel", _gpt2(), "decoder"),
    Case("gpt2-base", "GPT2Model", _gpt2(n_inner=48, activation_function="relu"), "decoder"),
    Case("llama", "LlamaForCausalLM", _llama(), "decoder"),
    Case("llama-tied", "LlamaForCausalLM", _llama(tie_word_embeddings=True, rope_theta=500.0, attention_bias=True), "decoder"),
    Case("llama-base", "LlamaModel", _llama(num_key_value_heads=1, head_dim=16), "decoder"),
    Case("t5", "T5ForConditionalGeneration", _t5(), "seq2seq"),
    Case("t5-v1_1", "T5ForConditionalGeneration", _t5(feed_forward_proj="gated-gelu", tie_word_embeddings=False), "seq2seq"),
    Case("t5-base", "T5Model", _t5(num_decoder_layers=3), "seq2seq"),
    Case("bart", "BartForConditionalGeneration", _bart(), "seq2seq", pad=1),
    Case("bart-base", "BartModel", _bart(decoder_layers=3, scale_embedding=True), "seq2seq", pad=1),
]
BY_ID = {c.id: c for c in CASES}
PARAMS = [pytest.param(c, id=c.id) for c in CASES]


def padded_batch(length: int = 12, pad_from: int = 7, seed: int = 1, pad: int = 0, vocab: int = V
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids (2, length) and a mask whose second row is padding (id `pad`) from `pad_from` on."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (2, length), generator=gen)
    mask = torch.ones(2, length, dtype=torch.long)
    mask[1, pad_from:] = 0
    ids[1, pad_from:] = pad
    return ids, mask


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"{tuple(a.shape)} vs {tuple(b.shape)}"
    return (a - b).abs().max().item()


def hf_output(out: Any) -> torch.Tensor:
    """The main output of a transformers model: LM logits if it has a head, else the last hidden state."""
    for key in ("logits", "prediction_logits", "last_hidden_state"):
        if getattr(out, key, None) is not None:
            return getattr(out, key)
    raise AssertionError(f"no known output in {type(out).__name__}")


def our_output(case: Case, out: dict[str, torch.Tensor]) -> torch.Tensor:
    for key in ("logits", "mlm_logits", "hidden"):
        if key in out:
            return out[key]
    raise AssertionError(f"no known output among {list(out)}")


@torch.no_grad()
def compare(case: Case, hf: nn.Module, ours: nn.Module, vocab: int = V) -> float:
    """Max abs difference of the main outputs on a padded batch (real tokens of encoders and decoders;
    for seq2seq the padding is in the source and every target position is compared)."""
    if case.kind == "seq2seq":
        src, src_mask = padded_batch(14, 9, pad=case.pad, vocab=vocab)
        tgt, _ = padded_batch(8, 8, seed=2, vocab=vocab)
        ref = hf(input_ids=src, attention_mask=src_mask, decoder_input_ids=tgt)
        return max_diff(our_output(case, ours(src=src, src_mask=src_mask, tgt=tgt)), hf_output(ref))
    ids, mask = padded_batch(16 if case.kind == "decoder" else 12, 9 if case.kind == "decoder" else 7, pad=case.pad,
                             vocab=vocab)
    extra = {"segments": torch.zeros_like(ids)} if case.segments else {}
    ref = hf_output(hf(input_ids=ids, attention_mask=mask))
    out = our_output(case, ours(tokens=ids, attention_mask=mask, **extra))
    keep = mask.bool()  # padded positions attend to nothing useful; compare real tokens
    return max_diff(out[keep], ref[keep])


def save(model: nn.Module, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder
