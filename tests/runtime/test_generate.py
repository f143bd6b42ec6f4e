"""Generation: the KV cache changes nothing but the cost; sampling options do what they say.

Random-init models compiled from the specs (no training needed) check the
decoders: greedy decoding with the KV cache must pick, token for token, what
re-running the whole sequence without a cache picks, for a causal LM and for
encoder-decoders. `pick` is checked on known distributions; `specc generate`
on a trained tiny run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import specc
from specc.runtime.inference.generate import Sampling, generate_causal, generate_seq2seq, pick
from specc.ops import KVCache
from runtools import SPECS, Run

GREEDY = Sampling(max_new_tokens=24, temperature=0.0)
PROMPT = [5, 17, 99, 3, 250, 41, 7]


@pytest.fixture(scope="module")
def gpt() -> tuple[specc.SpecModel, specc.LayerGraph]:
    graph = specc.load_graph(SPECS / "gpt-tiny.toml", ["params.layers=2", "params.d_model=64", "params.vocab=512",
                                                       "params.max_seq=48"])
    return specc.compile_model(graph).eval(), graph


def greedy_without_cache(model: torch.nn.Module, prompt: list[int], steps: int) -> list[int]:
    """Re-run the whole sequence for every new token; the last position's logits decide."""
    tokens = list(prompt)
    for _ in range(steps):
        tokens.append(int(model(tokens=torch.tensor([tokens]))["logits"][0, -1].argmax()))
    return tokens[len(prompt):]


@torch.no_grad()
def test_causal_kv_cache_matches_full_recompute(gpt: tuple[specc.SpecModel, specc.LayerGraph]) -> None:
    model, graph = gpt
    assert generate_causal(model, graph, PROMPT, GREEDY) == greedy_without_cache(model, PROMPT, GREEDY.max_new_tokens)


@torch.no_grad()
def test_causal_kv_cache_logits_equal_full_forward(gpt: tuple[specc.SpecModel, specc.LayerGraph]) -> None:
    """Teacher-forced: feeding a sequence one token at a time through the cache gives every position's
    logits of one full forward pass (a stronger check than argmax, which a random model keeps repeating)."""
    model, _ = gpt
    seq = torch.randint(0, 512, (2, 40), generator=torch.Generator().manual_seed(0))  # (B, T)
    want = model(tokens=seq)["logits"]  # (B, T, V)
    cache, got = KVCache(), []
    for chunk in seq.split([7, 1, 1, 5, *[1] * 26], dim=1):  # a prompt, then single tokens and a burst
        got.append(model(tokens=chunk, cache=cache)["logits"])
        cache.advance(chunk.shape[1])
    torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=0, atol=1e-5)


@torch.no_grad()
def test_causal_generation_stops_at_the_context_window(gpt: tuple[specc.SpecModel, specc.LayerGraph]) -> None:
    model, graph = gpt  # max_seq = 48 learned positions
    prompt = list(range(100))  # longer than the window: its tail that fits is continued while positions last
    out = generate_causal(model, graph, prompt, GREEDY)
    assert len(out) == 1
    assert out == greedy_without_cache(model, prompt[-47:], 1)


@pytest.mark.parametrize("spec", ["t5-tiny.toml", "transformer-tiny.toml"])
@torch.no_grad()
def test_seq2seq_kv_cache_matches_full_recompute(spec: str) -> None:
    model = specc.compile_file(SPECS / spec, ["params.vocab=512"]).eval()
    src, start, eos = torch.tensor([[11, 42, 7, 300, 5, 19, 2]]), 0, 1
    cached = generate_seq2seq(model, src[0].tolist(), start, GREEDY, eos=eos, pad=0)
    tgt: list[int] = [start]
    for _ in range(GREEDY.max_new_tokens):
        nxt = int(model(src=src, tgt=torch.tensor([tgt]))["logits"][0, -1].argmax())
        if nxt == eos:
            break
        tgt.append(nxt)
    assert cached == tgt[1:]

    # teacher-forced: the decoder fed one token at a time through the cache (the encoder run once)
    tgt_seq = torch.randint(2, 512, (1, 20), generator=torch.Generator().manual_seed(1))
    want = model(src=src, tgt=tgt_seq)["logits"]  # (1, T, V)
    cache = KVCache(incremental=frozenset({"tgt", "tgt_mask"}))
    got = []
    for t in range(tgt_seq.shape[1]):
        got.append(model(src=src, tgt=tgt_seq[:, t : t + 1], cache=cache)["logits"])
        cache.advance(1)
    torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=0, atol=1e-5)


@torch.no_grad()
def test_top_k_1_is_greedy(gpt: tuple[specc.SpecModel, specc.LayerGraph]) -> None:
    model, graph = gpt
    greedy = generate_causal(model, graph, PROMPT, GREEDY)
    for seed, temperature in [(0, 1.0), (1, 0.7), (2, 1.5)]:
        sampled = generate_causal(model, graph, PROMPT, Sampling(24, temperature=temperature, top_k=1, seed=seed))
        assert sampled == greedy, (seed, temperature)


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    probs = torch.tensor([0.05, 0.5, 0.1, 0.3, 0.05])  # sorted: 1 (0.5), 3 (0.3), 2 (0.1), 0 and 4 (0.05 each)
    logits = probs.log().expand(20000, -1)
    gen = torch.Generator().manual_seed(0)
    for top_p, kept in [(0.3, {1}), (0.7, {1, 3}), (0.85, {1, 3, 2}), (1.0, {0, 1, 2, 3, 4})]:
        drawn = pick(logits, Sampling(temperature=1.0, top_p=top_p), gen)
        counts = torch.bincount(drawn, minlength=5).float()
        assert {int(i) for i in counts.nonzero()} == kept, top_p
        # the kept tokens keep their relative probabilities (renormalised)
        want = torch.zeros(5)
        want[list(kept)] = probs[list(kept)] / probs[list(kept)].sum()
        torch.testing.assert_close(counts / counts.sum(), want, rtol=0, atol=0.02)


def test_top_k_keeps_the_k_most_likely() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]]).expand(5000, -1)
    drawn = pick(logits, Sampling(temperature=1.0, top_k=2), torch.Generator().manual_seed(0))
    assert set(drawn.tolist()) == {1, 3}


@torch.no_grad()
def test_same_seed_same_sample(gpt: tuple[specc.SpecModel, specc.LayerGraph]) -> None:
    model, graph = gpt
    sample = lambda seed: generate_causal(model, graph, PROMPT, Sampling(24, temperature=1.0, top_p=0.95, seed=seed))  # noqa: E731
    assert sample(3) == sample(3)
    assert sample(3) != sample(4)


# -- the command line, on a trained run ------------------------------------------------------------------------
def test_specc_generate_cli(cli: Run, trained_run: Path) -> None:
    done = cli("generate", str(trained_run), "--prompt", "The import statement", "--max-new-tokens", "20", "--seed", "7")
    assert done.returncode == 0, done.stderr
    text = done.stdout.rstrip("\n")
    assert text.startswith("The import statement") and len(text) > len("The import statement")


def test_specc_generate_seed_and_greedy_are_reproducible(capsys: pytest.CaptureFixture[str], trained_run: Path) -> None:
    from specc.cli import main

    def run(*args: str) -> str:
        assert main(["generate", str(trained_run), "--prompt", "The", "--max-new-tokens", "15", *args]) == 0
        return capsys.readouterr().out

    assert run("--seed", "1") == run("--seed", "1")
    assert run("--temperature", "0") == run("--temperature", "0", "--seed", "5")  # greedy ignores the seed
    assert run("--temperature", "0") == run("--top-k", "1", "--seed", "9")


def test_specc_generate_on_a_missing_run_is_a_clean_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from specc.cli import main

    assert main(["generate", str(tmp_path / "nowhere"), "--prompt", "x"]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err
