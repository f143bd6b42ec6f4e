"""Batched beam search: width 1 is greedy decoding; scores are the hypotheses' real log-probabilities."""

from __future__ import annotations

import pytest
import torch

from helpers import SPECS, TINY_T5
from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph import build_graph
from specc.schema import validate
from runtime.beam import Beam, beam_search
from runtime.generate import Sampling, generate_seq2seq

PAD, EOS = 0, 1
SOURCES = [[5, 9, 23, 7, EOS], [44, 3, EOS], [8, 8, 8, 12, 30, 31, 2, EOS]]  # different lengths: padded in one batch


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    graph = build_graph(validate(parse(SPECS / "t5-tiny.toml", [*TINY_T5, "params.vocab=64"])))
    torch.manual_seed(0)
    m = compile_model(graph)
    with torch.no_grad():  # sharper than the initialisation, so that hypotheses differ
        for p in m.parameters():
            p.mul_(8.0 if p.ndim > 1 else 1.0)
    return m.eval()


def test_width_one_is_greedy_decoding_and_padding_changes_nothing(model: torch.nn.Module) -> None:
    beams = beam_search(model, SOURCES, PAD, EOS, PAD, Beam(width=1, length_penalty=0.0, max_new_tokens=10))
    for src, (ids, _) in zip(SOURCES, beams):
        greedy = generate_seq2seq(model, src, PAD, Sampling(max_new_tokens=10, temperature=0.0), EOS, PAD)
        assert ids == greedy


@torch.no_grad()
def _logprob(model: torch.nn.Module, src: list[int], ids: list[int]) -> float:
    tgt = torch.tensor([[PAD] + ids[:-1]])  # teacher forcing
    logp = model(src=torch.tensor([src]), tgt=tgt)["logits"].float().log_softmax(-1)[0]
    return float(sum(logp[t, i] for t, i in enumerate(ids)))


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_beam_scores_are_length_normalised_log_probabilities(model: torch.nn.Module, penalty: float) -> None:
    limit = 12
    for src, (ids, score) in zip(SOURCES, beam_search(model, SOURCES, PAD, EOS, PAD, Beam(3, penalty, limit))):
        finished = _logprob(model, src, ids + [EOS]) / (len(ids) + 1) ** penalty
        unfinished = _logprob(model, src, ids) / max(len(ids), 1) ** penalty
        assert score == pytest.approx(finished, abs=1e-4) or (len(ids) == limit and score == pytest.approx(unfinished, abs=1e-4))


def test_a_wider_beam_finds_at_least_as_likely_a_translation(model: torch.nn.Module) -> None:
    narrow = beam_search(model, SOURCES, PAD, EOS, PAD, Beam(1, 0.0, 12))
    wide = beam_search(model, SOURCES, PAD, EOS, PAD, Beam(4, 0.0, 12))
    assert all(w[1] >= n[1] - 1e-5 for n, w in zip(narrow, wide))
