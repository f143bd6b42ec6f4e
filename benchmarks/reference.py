"""Hand-written PyTorch models of the benchmark shapes: what an expert writes without a framework.

`RefGPT` is nanoGPT-style (pre-norm, fused qkv, `scaled_dot_product_attention`
with `is_causal`, tanh GELU, tied head, cross-entropy on the full logits).
`RefBERT` is the BERT encoder with its MLM head (and NSP classifier) written
the same way: post-norm, fused qkv, exact GELU, a padding mask only when one
is given, logits for every position (as `BertForMaskedLM` computes them).
Weights come from a compiled specc model (`load_from_specc`) so that the
three implementations of a benchmark share one set of weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Dims:
    vocab: int
    d_model: int
    layers: int
    heads: int
    d_ff: int
    max_seq: int
    eps: float
    type_vocab: int = 2


class SelfAttention(nn.Module):
    def __init__(self, d: Dims, causal: bool):
        super().__init__()
        self.qkv = nn.Linear(d.d_model, 3 * d.d_model)
        self.proj = nn.Linear(d.d_model, d.d_model)
        self.heads, self.causal = d.heads, causal

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, d: Dims, approximate: str):
        super().__init__()
        self.fc = nn.Linear(d.d_model, d.d_ff)
        self.proj = nn.Linear(d.d_ff, d.d_model)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate=self.approximate))


class GPTBlock(nn.Module):
    def __init__(self, d: Dims):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d.d_model, eps=d.eps), nn.LayerNorm(d.d_model, eps=d.eps)
        self.attn, self.mlp = SelfAttention(d, causal=True), MLP(d, "tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class RefGPT(nn.Module):
    def __init__(self, d: Dims):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(d.vocab, d.d_model), nn.Embedding(d.max_seq, d.d_model)
        self.blocks = nn.ModuleList(GPTBlock(d) for _ in range(d.layers))
        self.ln_f = nn.LayerNorm(d.d_model, eps=d.eps)
        self.lm_head = nn.Linear(d.d_model, d.vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe.weight[:T]  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1)) if targets is not None else None
        return logits, loss


class BERTLayer(nn.Module):
    def __init__(self, d: Dims):
        super().__init__()
        self.attn, self.mlp = SelfAttention(d, causal=False), MLP(d, "none")
        self.ln_1, self.ln_2 = nn.LayerNorm(d.d_model, eps=d.eps), nn.LayerNorm(d.d_model, eps=d.eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.ln_1(x + self.attn(x, mask))
        return self.ln_2(x + self.mlp(x))


class RefBERT(nn.Module):
    """BERT with its pretraining heads; `forward` returns MLM logits (B, T, V) and NSP logits (B, 2)."""

    def __init__(self, d: Dims):
        super().__init__()
        self.word, self.pos, self.seg = (nn.Embedding(d.vocab, d.d_model), nn.Embedding(d.max_seq, d.d_model),
                                         nn.Embedding(d.type_vocab, d.d_model))
        self.ln_emb = nn.LayerNorm(d.d_model, eps=d.eps)
        self.layers = nn.ModuleList(BERTLayer(d) for _ in range(d.layers))
        self.pooler, self.nsp = nn.Linear(d.d_model, d.d_model), nn.Linear(d.d_model, 2)
        self.transform, self.ln_head = nn.Linear(d.d_model, d.d_model), nn.LayerNorm(d.d_model, eps=d.eps)
        self.decoder_bias = nn.Parameter(torch.zeros(d.vocab))

    def forward(self, idx: torch.Tensor, segments: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        T = idx.shape[1]
        x = self.ln_emb(self.word(idx) + self.pos.weight[:T] + self.seg(segments))
        mask = attention_mask[:, None, None, :].bool() if attention_mask is not None else None  # (B, 1, 1, T)
        for layer in self.layers:
            x = layer(x, mask)
        h = self.ln_head(F.gelu(self.transform(x)))
        mlm = F.linear(h, self.word.weight, self.decoder_bias)  # (B, T, V), tied decoder
        nsp = self.nsp(torch.tanh(self.pooler(x[:, 0])))  # (B, 2)
        return mlm, nsp


def _common(block: str, i: int, ours: str) -> dict[str, str]:
    """Renames of one layer's attention and MLP tensors: reference name → specc name."""
    return {
        f"{block}.{i}.attn.qkv.weight": f"{ours}.{i}.{{attn}}.qkv.weight", f"{block}.{i}.attn.qkv.bias": f"{ours}.{i}.{{attn}}.qkv.bias",
        f"{block}.{i}.attn.proj.weight": f"{ours}.{i}.{{attn}}.o.weight", f"{block}.{i}.attn.proj.bias": f"{ours}.{i}.{{attn}}.o.bias",
        f"{block}.{i}.mlp.fc.weight": f"{ours}.{i}.{{mlp}}.fc_in.weight", f"{block}.{i}.mlp.fc.bias": f"{ours}.{i}.{{mlp}}.fc_in.bias",
        f"{block}.{i}.mlp.proj.weight": f"{ours}.{i}.{{mlp}}.fc_out.weight", f"{block}.{i}.mlp.proj.bias": f"{ours}.{i}.{{mlp}}.fc_out.bias",
    }


def gpt_names(d: Dims) -> dict[str, str]:
    names = {"wte.weight": "wte.weight", "wpe.weight": "wpe.weight", "ln_f.weight": "ln_f.weight", "ln_f.bias": "ln_f.bias"}
    for i in range(d.layers):
        names |= {k: v.format(attn="attn", mlp="mlp") for k, v in _common("blocks", i, "h").items()}
        for ln in ("ln_1", "ln_2"):
            names |= {f"blocks.{i}.{ln}.weight": f"h.{i}.{ln}.weight", f"blocks.{i}.{ln}.bias": f"h.{i}.{ln}.bias"}
    return names


def bert_names(d: Dims) -> dict[str, str]:
    names = {
        "word.weight": "word_embeddings.weight", "pos.weight": "position_embeddings.weight",
        "seg.weight": "token_type_embeddings.weight", "ln_emb.weight": "embed_norm.weight", "ln_emb.bias": "embed_norm.bias",
        "pooler.weight": "pooler.weight", "pooler.bias": "pooler.bias", "nsp.weight": "nsp_head.weight", "nsp.bias": "nsp_head.bias",
        "transform.weight": "mlm_head.transform.weight", "transform.bias": "mlm_head.transform.bias",
        "ln_head.weight": "mlm_head.norm.weight", "ln_head.bias": "mlm_head.norm.bias", "decoder_bias": "mlm_head.bias",
    }
    for i in range(d.layers):
        names |= {k: v.format(attn="attention", mlp="ffn") for k, v in _common("layers", i, "layer").items()}
        for ln, ours in (("ln_1", "attention_norm"), ("ln_2", "output_norm")):
            names |= {f"layers.{i}.{ln}.weight": f"layer.{i}.{ours}.weight", f"layers.{i}.{ln}.bias": f"layer.{i}.{ours}.bias"}
    return names


@torch.no_grad()
def load_from_specc(ref: nn.Module, specc_model: nn.Module, names: dict[str, str]) -> None:
    """Copy `specc_model`'s tensors into `ref` by the reference → specc name table; every tensor is filled."""
    theirs = specc_model.state_dict()
    own = dict(ref.named_parameters())
    missing = set(own) - set(names)
    assert not missing, f"reference tensors without a specc source: {sorted(missing)}"
    for name, source in names.items():
        own[name].copy_(theirs[source])
