"""Beam search for encoder-decoders and decoder-only models, batched, with a KV cache.

Rows are (example, beam) pairs flattened to ``B * K``. Every example has a
prompt, the tokens fed before its first choice: the start token of an
encoder-decoder's target (the encoder runs once; its output is cached as a
static value), or a decoder-only model's ``prompt(src) separator``. Prompts of
different lengths share a batch without padding: the length they all have runs
at once, then each step feeds one token per row, and a row still inside its
prompt is fed its next prompt token (its choice waits). So every row sees the
positions it would see decoded alone. The cache is reordered to follow the
surviving beams.

A finished hypothesis is scored by its summed log-probability divided by
``length ** length_penalty`` (length counts the end token); an example stops
once it has `width` finished hypotheses, or once it has generated its budget
of tokens (then its unfinished beams compete too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from specc.ops import KVCache


@dataclass(frozen=True)
class Beam:
    width: int = 4
    length_penalty: float = 1.0
    max_new_tokens: int = 64


@dataclass(frozen=True)
class Feed:
    """How the model reads while decoding: the input the decoded tokens go to, inputs fixed per
    example (an encoder's source), and how many positions a decoder-only model has."""

    tokens: str = "tokens"
    context: dict[str, torch.Tensor] = field(default_factory=dict)  # name → (B, ...), one row per example
    positions: int | None = None  # a decoder-only model's limit: prompt + generated tokens stay within it

    @staticmethod
    def encoder_decoder(sources: list[list[int]], pad: int, src_mask: bool = True) -> Feed:
        """The sources padded to one batch (with their padding mask when the model reads one)."""
        width = max(len(s) for s in sources)
        context = {"src": torch.tensor([s + [pad] * (width - len(s)) for s in sources])}
        if src_mask:
            context["src_mask"] = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sources])
        return Feed("tgt", context)

    @property
    def incremental(self) -> frozenset[str]:
        """Inputs that change every step; nodes that read none of them are computed once."""
        return frozenset({self.tokens, "tgt_mask" if self.tokens == "tgt" else "attention_mask"})

    def budget(self, prompt: int, beam: Beam) -> int:
        """Most tokens an example with a `prompt`-token prompt may generate."""
        return beam.max_new_tokens if self.positions is None else max(0, min(beam.max_new_tokens, self.positions - prompt))


@dataclass
class _Example:
    prompt: list[int]
    budget: int
    finished: list[tuple[float, list[int]]] = field(default_factory=list)
    result: tuple[list[int], float] | None = None  # set when it stops


@torch.no_grad()
def beam_search(model: torch.nn.Module, prompts: list[list[int]], eos: int, pad: int, beam: Beam,
                feed: Feed) -> list[tuple[list[int], float]]:
    """Per prompt, the best continuation's ids (without the end token) and its score."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    B, K = len(prompts), beam.width
    examples = [_Example(list(p), feed.budget(len(p), beam)) for p in prompts]
    for ex in examples:
        if ex.budget == 0:
            ex.result = ([], float("-inf"))
    context = {k: v.to(device).repeat_interleave(K, 0) for k, v in feed.context.items()}  # (B*K, ...)
    cache = KVCache(incremental=feed.incremental)
    fed = min(len(p) for p in prompts)
    tokens = torch.tensor([p[:fed] for p in prompts], device=device).repeat_interleave(K, 0)  # (B*K, fed)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    history: list[list[int]] = [[] for _ in range(B * K)]
    while any(ex.result is None for ex in examples):
        logits = model(**{feed.tokens: tokens}, cache=cache, **context)["logits"][:, -1].float()  # (B*K, V)
        cache.advance(tokens.shape[1])
        logp = logits.log_softmax(-1).view(B, K, -1)
        V = logp.shape[-1]
        top = (scores.unsqueeze(-1) + logp).view(B, K * V).topk(2 * K, dim=-1)  # (B, 2K)
        top_scores, top_index, current = top.values.tolist(), top.indices.tolist(), scores.tolist()
        rows, nxt, new_scores, new_history = [], [], [], []
        for b, ex in enumerate(examples):
            if ex.result is not None:  # stopped: dead beams, never chosen again
                keep = [(0, pad, float("-inf"))] * K
            elif fed < len(ex.prompt):  # still reading its prompt
                keep = [(k, ex.prompt[fed], current[b][k]) for k in range(K)]
            else:
                keep = _expand(ex, history[b * K : (b + 1) * K], top_scores[b], top_index[b], V, eos, pad, beam)
            for origin, token, sc in keep:
                rows.append(b * K + origin)
                nxt.append(token)
                new_scores.append(sc if ex.result is None else float("-inf"))
                grows = ex.result is None and fed >= len(ex.prompt)
                new_history.append(history[b * K + origin] + [token] if grows else history[b * K + origin])
        fed += 1
        cache.reorder(torch.tensor(rows, device=device))
        history = new_history
        scores = torch.tensor(new_scores, device=device).view(B, K)
        tokens = torch.tensor(nxt, device=device).view(B * K, 1)
    model.train(was_training)
    results = [ex.result for ex in examples if ex.result is not None]
    assert len(results) == B
    return results


def _expand(ex: _Example, history: list[list[int]], top_scores: list[float], top_index: list[int], V: int, eos: int,
            pad: int, beam: Beam) -> list[tuple[int, int, float]]:
    """One step of one example: the K best (origin beam, token, score) that go on; hypotheses ending in
    `eos` join `ex.finished`, and `ex.result` is set once it has K of them or has spent its budget."""
    K = beam.width
    keep: list[tuple[int, int, float]] = []
    for sc, ix in zip(top_scores, top_index):
        origin, token = divmod(ix, V)
        if sc == float("-inf"):
            break
        if token == eos:
            if len(ex.finished) < K:
                ex.finished.append((sc / (len(history[origin]) + 1) ** beam.length_penalty, history[origin]))
            continue
        keep.append((origin, token, sc))
        if len(keep) == K:
            break
    spent = len(history[0]) + 1 >= ex.budget  # this step's tokens were its last
    pool = list(ex.finished)
    if spent and len(pool) < K:  # out of tokens: unfinished beams compete too
        pool += [(sc / (len(history[o]) + 1) ** beam.length_penalty, history[o] + [t]) for o, t, sc in keep]
    if len(ex.finished) >= K or spent:
        best = max(pool, key=lambda x: x[0]) if pool else (float("-inf"), [])
        ex.result = (best[1], best[0])
    return keep + [(0, pad, float("-inf"))] * (K - len(keep))
