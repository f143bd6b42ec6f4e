"""Batched beam search, encoder-decoder and decoder-only: width 1 is greedy decoding; batching and padding
change nothing; scores are the hypotheses' real log-probabilities."""

from __future__ import annotations

import pytest
import torch

from helpers import SPECS, TINY, TINY_T5
from specc.compiler import compile_model
from specc.frontend import parse
from specc.graph import build_graph
from specc.schema import validate
from specc.runtime.inference.beam import Beam, Feed, beam_search
from specc.runtime.inference.generate import Sampling, generate_causal, generate_seq2seq

PAD, EOS = 0, 1
SOURCES = [[5, 9, 23, 7, EOS], [44, 3, EOS], [8, 8, 8, 12, 30, 31, 2, EOS]]  # different lengths: padded in one batch


def _sharp(spec: str, sets: list[str]) -> torch.nn.Module:
    graph = build_graph(validate(parse(SPECS / spec, [*sets, "params.vocab=64"])))
    torch.manual_seed(0)
    m = compile_model(graph)
    with torch.no_grad():  # sharper than the initialisation, so that hypotheses differ
        for p in m.parameters():
            p.mul_(8.0 if p.ndim > 1 else 1.0)
    return m.eval()


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return _sharp("t5-tiny.toml", TINY_T5)


def beam_search_seq2seq(model: torch.nn.Module, sources: list[list[int]], beam: Beam) -> list[tuple[list[int], float]]:
    return beam_search(model, [[PAD]] * len(sources), EOS, PAD, beam, Feed.encoder_decoder(sources, PAD))


def test_width_one_is_greedy_decoding_and_padding_changes_nothing(model: torch.nn.Module) -> None:
    beams = beam_search_seq2seq(model, SOURCES, Beam(width=1, length_penalty=0.0, max_new_tokens=10))
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
    for src, (ids, score) in zip(SOURCES, beam_search_seq2seq(model, SOURCES, Beam(3, penalty, limit))):
        finished = _logprob(model, src, ids + [EOS]) / (len(ids) + 1) ** penalty
        unfinished = _logprob(model, src, ids) / max(len(ids), 1) ** penalty
        assert score == pytest.approx(finished, abs=1e-4) or (len(ids) == limit and score == pytest.approx(unfinished, abs=1e-4))


def test_a_wider_beam_finds_at_least_as_likely_a_translation(model: torch.nn.Module) -> None:
    narrow = beam_search_seq2seq(model, SOURCES, Beam(1, 0.0, 12))
    wide = beam_search_seq2seq(model, SOURCES, Beam(4, 0.0, 12))
    assert all(w[1] >= n[1] - 1e-5 for n, w in zip(narrow, wide))


# -- decoder-only: prompts of different lengths in one batch ------------------------------------------
PROMPTS = [[5, 9, 23, 7, 2], [44, 3], [8, 8, 8, 12, 30, 31, 2, 17, 60], [11]]


@pytest.fixture(scope="module")
def causal() -> torch.nn.Module:
    return _sharp("gpt-tiny.toml", TINY)


def test_decoder_only_width_one_is_greedy_decoding(causal: torch.nn.Module) -> None:
    beams = beam_search(causal, PROMPTS, EOS, PAD, Beam(width=1, length_penalty=0.0, max_new_tokens=10), Feed())
    graph = build_graph(validate(parse(SPECS / "gpt-tiny.toml", [*TINY, "params.vocab=64"])))
    for prompt, (ids, _) in zip(PROMPTS, beams):
        greedy = generate_causal(causal, graph, prompt, Sampling(max_new_tokens=10, temperature=0.0), EOS)  # type: ignore[arg-type]
        assert ids == (greedy[:-1] if greedy[-1:] == [EOS] else greedy)


@pytest.mark.parametrize("width", [1, 3])
def test_decoder_only_batching_changes_nothing(causal: torch.nn.Module, width: int) -> None:
    """Each prompt decodes in a batch of prompts of other lengths as it does alone (and in any order)."""
    beam = Beam(width, 1.0, 12)
    together = beam_search(causal, PROMPTS, EOS, PAD, beam, Feed())
    reversed_ = beam_search(causal, PROMPTS[::-1], EOS, PAD, beam, Feed())[::-1]
    for prompt, joint, back in zip(PROMPTS, together, reversed_):
        ((alone, score),) = beam_search(causal, [prompt], EOS, PAD, beam, Feed())
        assert joint[0] == alone == back[0] and joint[1] == pytest.approx(score, abs=1e-4)
    assert len({tuple(ids) for ids, _ in together}) > 1  # the prompts lead somewhere different


@torch.no_grad()
@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_decoder_only_scores_are_log_probabilities_of_the_continuation(causal: torch.nn.Module, penalty: float) -> None:
    limit = 12
    for prompt, (ids, score) in zip(PROMPTS, beam_search(causal, PROMPTS, EOS, PAD, Beam(3, penalty, limit), Feed())):
        seq = prompt + ids + [EOS]
        logp = causal(tokens=torch.tensor([seq[:-1]]))["logits"].float().log_softmax(-1)[0]
        steps = [float(logp[len(prompt) - 1 + t, i]) for t, i in enumerate(ids + [EOS])]
        finished = sum(steps) / (len(ids) + 1) ** penalty
        unfinished = sum(steps[:-1]) / max(len(ids), 1) ** penalty
        assert score == pytest.approx(finished, abs=1e-4) or (len(ids) == limit and score == pytest.approx(unfinished, abs=1e-4))


def test_decoder_only_stays_within_the_positions(causal: torch.nn.Module) -> None:
    """A prompt near the model's last position gets only the tokens that still fit."""
    beams = beam_search(causal, PROMPTS, EOS, PAD, Beam(2, 0.0, 30), Feed(positions=9))
    for prompt, (ids, _) in zip(PROMPTS, beams):
        assert len(ids) <= 9 - len(prompt)
    assert beams[2] == ([], float("-inf"))  # its 9-token prompt fills every position
