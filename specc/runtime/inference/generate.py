"""Sampling from causal LMs and encoder-decoders, with a KV cache.

Each new token costs one position: the prompt is run once, then every step
feeds only the newest token and reuses the cached keys and values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specc.compiler import SpecModel
from specc.graph import LayerGraph
from specc.graph.queries import max_positions
from specc.ops import KVCache


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 60
    temperature: float = 1.0  # 0 means greedy
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0


def pick(logits: torch.Tensor, s: Sampling, gen: torch.Generator) -> torch.Tensor:
    """(B, V) logits → (B,) next tokens, by greedy, temperature, top-k and top-p (nucleus) sampling."""
    if s.temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / s.temperature
    if s.top_k > 0:
        kth = torch.topk(logits, min(s.top_k, logits.shape[-1])).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > s.top_p  # keep the smallest prefix reaching top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(-1), 1, generator=gen).squeeze(-1)


@torch.no_grad()
def generate_causal(model: SpecModel, graph: LayerGraph, prompt: list[int], s: Sampling, eos: int | None = None) -> list[int]:
    """Continue `prompt` (token ids) by up to `s.max_new_tokens` tokens."""
    model.eval()
    device = next(model.parameters()).device
    limit = max_positions(graph)
    if limit is not None:
        prompt = prompt[-(limit - 1):]
        steps = min(s.max_new_tokens, limit - len(prompt))
    else:
        steps = s.max_new_tokens
    gen = torch.Generator(device=device).manual_seed(s.seed)
    cache = KVCache()
    tokens = torch.tensor([prompt], device=device)
    out: list[int] = []
    for _ in range(steps):
        logits = model(tokens=tokens, cache=cache)["logits"][:, -1]
        cache.advance(tokens.shape[1])
        nxt = pick(logits, s, gen)
        out.append(int(nxt))
        if eos is not None and out[-1] == eos:
            break
        tokens = nxt.view(1, 1)
    return out


@torch.no_grad()
def generate_seq2seq(model: SpecModel, src: list[int], start: int, s: Sampling, eos: int, pad: int) -> list[int]:
    """Decode a target for `src` with an encoder-decoder, starting from token `start`."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(s.seed)
    cache = KVCache(incremental=frozenset({"tgt", "tgt_mask"}))
    src_t = torch.tensor([src], device=device)
    tgt = torch.tensor([[start]], device=device)
    out: list[int] = []
    for _ in range(s.max_new_tokens):
        logits = model(src=src_t, tgt=tgt, cache=cache)["logits"][:, -1]
        cache.advance(1)
        nxt = pick(logits, s, gen)
        if int(nxt) == eos:
            break
        out.append(int(nxt))
        tgt = nxt.view(1, 1)
    return out
