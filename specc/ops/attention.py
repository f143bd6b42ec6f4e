"""Multi-head attention on `F.scaled_dot_product_attention` (its record: `specc.ops.records.attention`).

Self or cross; causal or not; grouped / multi-query kv heads; rotary or ALiBi
positions; an optional additive bias (T5) and key padding mask. Self-attention
uses one fused `qkv` projection (one matmul instead of three); cross-attention
has `q` and `kv`. Masks are built only when needed: a causal mask with no
padding, no bias and no cache uses SDPA's `is_causal`, and a padding mask stays
(B, 1, 1, S) rather than a materialised (B, T, S) float mask.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from specc.ops.cache import KVCache
from specc.ops.layers import Initialisable, Linear, rotate_half
from specc.ops.records.attention import AttentionParams


_MASKED = "_specc_masked"  # attribute of a bias tensor: its combination with a mask, for the next layer


def shared_mask(bias: torch.Tensor, key: tuple[object, ...], make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """`make()`: the (B, H, T, S) combination of `bias` with a mask, which `key` (the mask tensor first) names.

    Every layer of a stack gets the same bias and mask tensors, so the first layer combines them and
    the others reuse its result, kept on the bias tensor for as long as that lives (one forward pass),
    as transformers' T5 shares one masked position bias per stack rather than one per layer.
    """
    memo = getattr(bias, _MASKED, None)
    if memo is not None and memo[0][0] is key[0] and memo[0][1:] == key[1:]:
        return memo[1]
    combined = make()
    # Not on a leaf that carries gradients (a parameter outlives the pass, and its graph with it).
    if not torch.compiler.is_compiling() and not (bias.requires_grad and bias.grad_fn is None):
        setattr(bias, _MASKED, (key, combined))
    return combined


class Attention(Initialisable):
    cache_key = ""  # set by the compiler to the node's qualified name

    def __init__(self, p: AttentionParams):
        super().__init__()
        self.p = p
        self.h, self.kv, self.hd = p.heads, p.n_kv, p.hd
        if p.cross:
            self.q = Linear(p.d_model, self.h * self.hd, p.bias, p.init_std)
            self.kv_proj = Linear(p.d_memory or p.d_model, 2 * self.kv * self.hd, p.bias, p.init_std)
        else:
            self.qkv = Linear(p.d_model, (self.h + 2 * self.kv) * self.hd, p.bias, p.init_std)
        self.o = Linear(self.h * self.hd, p.d_model, p.bias, p.out_init_std if p.out_init_std is not None else p.init_std)
        self.scale = p.scale if p.scale is not None else self.hd**-0.5

    def initialize(self, std: float, gen: torch.Generator) -> None:
        super().initialize(std, gen)
        if self.p.q_init_std is not None:  # rescaled rather than redrawn: the other tensors' draws stay as they were
            q = self.q.weight if self.p.cross else self.qkv.weight[: self.h * self.hd]
            drawn = self.p.init_std if self.p.init_std is not None else std
            with torch.no_grad():
                if drawn > 0:
                    q.mul_(self.p.q_init_std / drawn)
                else:  # drawn with std 0: zeros, which no factor rescales
                    q.normal_(0.0, self.p.q_init_std, generator=gen)

    def extra_repr(self) -> str:
        p = self.p
        parts = [f"heads={p.heads}", f"head_dim={self.hd}"]
        parts += [f"kv_heads={p.n_kv}"] if p.n_kv != p.heads else []
        parts += ["cross"] if p.cross else ["causal"] if p.causal else []
        parts += [f"position={p.position}"] if p.position != "none" else []
        return ", ".join(parts)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        offset = cache.offset if cache is not None and not self.p.cross else 0
        q, k, v = self._project(x, memory, cache, offset)  # (B, H, T, hd), (B, KV, S, hd) x2
        attn_mask, is_causal = self._mask(T, k.shape[2], offset, mask, bias, x)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=self.scale,
            dropout_p=self.p.dropout if self.training else 0.0, enable_gqa=self.kv != self.h,
        )  # (B, H, T, hd)
        return self.o(y.transpose(1, 2).reshape(B, T, self.h * self.hd))

    def _project(
        self, x: torch.Tensor, memory: torch.Tensor | None, cache: KVCache | None, offset: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        if self.p.cross:
            assert memory is not None, "cross-attention needs a memory input"
            q = self.q(x)
            cached = cache.entries.get(self.cache_key) if cache is not None else None
            if cached is None:
                k, v = self._heads(self.kv_proj(memory), memory.shape[1]).unbind(0)
                if cache is not None:
                    cache.entries[self.cache_key] = (k, v)
            else:
                k, v = cached
            return q.view(B, T, self.h, self.hd).transpose(1, 2), k, v
        q, kv = self.qkv(x).split([self.h * self.hd, 2 * self.kv * self.hd], dim=-1)
        q = q.view(B, T, self.h, self.hd).transpose(1, 2)
        k, v = self._heads(kv, T).unbind(0)
        if self.p.position == "rotary":
            q, k = self._rotate(q, offset), self._rotate(k, offset)
        if cache is not None:
            past = cache.entries.get(self.cache_key)
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
            cache.entries[self.cache_key] = (k, v)
        return q, k, v

    def _heads(self, kv: torch.Tensor, length: int) -> torch.Tensor:
        """(B, S, 2*KV*hd) → (2, B, KV, S, hd)."""
        B = kv.shape[0]
        return kv.view(B, length, 2, self.kv, self.hd).permute(2, 0, 3, 1, 4)

    def _rotate(self, t: torch.Tensor, offset: int) -> torch.Tensor:
        T = t.shape[2]
        inv = 1.0 / (self.p.rope_base ** (torch.arange(0, self.hd, 2, device=t.device, dtype=torch.float32) / self.hd))
        freqs = torch.outer(torch.arange(offset, offset + T, device=t.device, dtype=torch.float32), inv)
        emb = torch.cat([freqs, freqs], dim=-1)  # (T, hd)
        cos, sin = emb.cos().to(t.dtype), emb.sin().to(t.dtype)
        return t * cos + rotate_half(t) * sin

    def _mask(
        self, T: int, S: int, offset: int, mask: torch.Tensor | None, bias: torch.Tensor | None, x: torch.Tensor
    ) -> tuple[torch.Tensor | None, bool]:
        causal = self.p.causal and not self.p.cross and T > 1
        if self.p.position == "alibi":
            bias = self._alibi(T, S, offset, x) if bias is None else bias + self._alibi(T, S, offset, x)
        if mask is None and bias is None:
            # SDPA's is_causal aligns top-left, which is right only without a cache offset.
            if not causal or offset == 0:
                return None, causal
        keep = mask[:, None, None, :].bool() if mask is not None else None  # (B, 1, 1, S)
        if causal:
            rows = torch.arange(offset, offset + T, device=x.device)[:, None]
            tri = torch.arange(S, device=x.device)[None, :] <= rows  # (T, S)
            keep = tri if keep is None else keep & tri
        if bias is None:
            return keep, False
        if keep is None:
            return bias.to(x.dtype), False
        # A large finite negative, not -inf, keeps fully padded rows from turning into NaN.
        fill = torch.finfo(x.dtype).min
        if self.p.position == "alibi":  # a bias of this layer's own
            return bias.to(x.dtype).masked_fill(~keep, fill), False
        return shared_mask(bias, (mask, causal, T, S, offset, x.dtype),
                           lambda: bias.to(x.dtype).masked_fill(~keep, fill)), False

    def _alibi(self, T: int, S: int, offset: int, x: torch.Tensor) -> torch.Tensor:
        slopes = torch.tensor([2 ** (-8 * (i + 1) / self.h) for i in range(self.h)], device=x.device)
        dist = (torch.arange(S, device=x.device)[None, :] - torch.arange(offset, offset + T, device=x.device)[:, None]).abs()
        return (-slopes[:, None, None] * dist).unsqueeze(0).to(x.dtype)  # (1, H, T, S)
