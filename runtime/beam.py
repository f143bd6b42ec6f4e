"""Beam search for encoder-decoders, batched, with a KV cache.

Rows are (example, beam) pairs flattened to ``B * K``; the encoder runs once
(its output is cached as a static value), each step feeds only the newest
target token, and the cache is reordered to follow the surviving beams.
A finished hypothesis is scored by its summed log-probability divided by
``length ** length_penalty`` (length counts the end token); an example stops
once it has `width` finished hypotheses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specc.ops import KVCache


@dataclass(frozen=True)
class Beam:
    width: int = 4
    length_penalty: float = 1.0
    max_new_tokens: int = 64


@torch.no_grad()
def beam_search(model: torch.nn.Module, sources: list[list[int]], start: int, eos: int, pad: int, beam: Beam,
                has_src_mask: bool = True) -> list[tuple[list[int], float]]:
    """Best target ids (without start and end tokens) and its score, per source."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    B, K = len(sources), beam.width
    width = max(len(s) for s in sources)
    src = torch.tensor([s + [pad] * (width - len(s)) for s in sources], device=device).repeat_interleave(K, 0)  # (B*K, S)
    extra = {}
    if has_src_mask:
        extra["src_mask"] = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sources],
                                         device=device).repeat_interleave(K, 0)
    cache = KVCache(incremental=frozenset({"tgt", "tgt_mask"}))
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    tokens = torch.full((B * K, 1), start, device=device)
    history: list[list[int]] = [[] for _ in range(B * K)]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]
    done = [False] * B
    for step in range(beam.max_new_tokens):
        logits = model(src=src, tgt=tokens, cache=cache, **extra)["logits"][:, -1].float()  # (B*K, V)
        cache.advance(1)
        logp = logits.log_softmax(-1).view(B, K, -1)
        V = logp.shape[-1]
        total = (scores.unsqueeze(-1) + logp).view(B, K * V)
        top_scores, top_index = total.topk(2 * K, dim=-1)  # (B, 2K)
        rows, nxt, new_scores = [], [], []
        for b in range(B):
            keep: list[tuple[int, int, float]] = []
            for sc, ix in zip(top_scores[b].tolist(), top_index[b].tolist()):
                origin, token = divmod(ix, V)
                if sc == float("-inf"):
                    break
                if token == eos:
                    if not done[b] and len(finished[b]) < K:
                        length = len(history[b * K + origin]) + 1
                        finished[b].append((sc / length ** beam.length_penalty, history[b * K + origin]))
                    continue
                keep.append((origin, token, sc))
                if len(keep) == K:
                    break
            if len(finished[b]) >= K:
                done[b] = True
            while len(keep) < K:  # pad with dead beams (never chosen again)
                keep.append((0, pad, float("-inf")))
            for origin, token, sc in keep:
                rows.append(b * K + origin)
                nxt.append(token)
                new_scores.append(sc if not done[b] else float("-inf"))
        if all(done):
            break
        index = torch.tensor(rows, device=device)
        history = [history[r] + [t] for r, t in zip(rows, nxt)]
        cache.reorder(index)
        scores = torch.tensor(new_scores, device=device).view(B, K)
        tokens = torch.tensor(nxt, device=device).view(B * K, 1)
    results = []
    for b in range(B):
        pool = list(finished[b])
        if len(pool) < K:  # ran out of steps: unfinished beams compete too
            for k in range(K):
                sc = float(scores[b, k])
                if sc != float("-inf"):
                    pool.append((sc / max(len(history[b * K + k]), 1) ** beam.length_penalty, history[b * K + k]))
        best = max(pool, key=lambda x: x[0]) if pool else (float("-inf"), [])
        results.append((best[1], best[0]))
    model.train(was_training)
    return results
