"""Pretraining objectives: how each builds its batches, what `specc check` says about misfits,
and that a short run of each on a tiny model lowers its loss.

Batch statistics are measured over tens of thousands of tokens of the embedded
corpus, with tolerances of about four standard deviations.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import torch

from specc.runtime.train import jobs
from specc.runtime.data.batches import LAYOUTS
from specc.runtime.config import DataConfig, TokenizerConfig
from specc.runtime.data.corpus import Corpus
from specc.runtime.data.prepare import token_store
from specc.runtime.data.tokens import TokenStore
from specc.runtime.errors import UserError
from specc.runtime.train.loop import BatchSource
from specc.runtime.batch import Batch
from specc.runtime.objectives import OBJECTIVES, ObjectiveSet
from specc.runtime.objectives.denoising import infill, permute_sentences, span_lengths
from specc.runtime.objectives.span_corruption import noise_mask
from specc.runtime.data.tokenizer import TextTokenizer, build_tokenizer
from specc.cli import main
from runtools import SPECS, metrics

DOCS = 120  # documents of the embedded corpus the batch tests cut from (~60k tokens)
SEQ = 128


class Text:
    """A tokenizer trained on the first DOCS documents and the train split tokenised with it."""

    def __init__(self, kind: str, **options: Any):
        corpus = Corpus(DataConfig(max_documents=DOCS), Path("."))
        cfg = TokenizerConfig(kind=kind, vocab_size=1000, **options)  # type: ignore[arg-type]
        self.tok: TextTokenizer = build_tokenizer(cfg, corpus.documents("train"), corpus.fingerprint())
        self.store: TokenStore = token_store(corpus, "train", self.tok)
        self.specials = self.tok.specials

    def source(self, objective: str, seed: int = 0, seq_len: int = SEQ, **options: Any) -> BatchSource:
        record = OBJECTIVES[objective]
        return BatchSource(ObjectiveSet(((record, record.params(**options)),), record.layout), self.store, self.tok, seq_len, seed)

    def raw(self, layout: str, first: int, size: int, seq_len: int = SEQ) -> Batch:
        """A batch of `layout` before any objective prepares it."""
        return LAYOUTS[layout](self.store, self.specials, seq_len, 0).batch(first, size)


@pytest.fixture(scope="module")
def texts(specc_cache: Path) -> Iterator[dict[str, Text]]:
    with pytest.MonkeyPatch.context() as mp:  # module-scoped, so the function-scoped cache fixture is not active yet
        mp.setenv("SPECC_CACHE", str(specc_cache))
        yield {"wordpiece": Text("wordpiece", lowercase=True), "bpe": Text("bpe"), "unigram": Text("unigram", sentinels=20)}


def within(value: float, expected: float, tolerance: float) -> bool:
    return abs(value - expected) <= tolerance


# -- masked LM ---------------------------------------------------------------------------------

def test_mlm_chooses_15_percent_and_replaces_80_10_10(texts: dict[str, Text]) -> None:
    text = texts["wordpiece"]
    src = text.source("mlm")
    special = np.array(sorted(text.specials.all()))
    chosen_n = ordinary_n = masked = randomised = kept = 0
    for first in range(0, 640, 16):
        original = text.raw("bert", first, 16).inputs["tokens"].numpy()
        batch = src.get(first, 16)
        tokens, select = batch.inputs["tokens"].numpy(), batch.inputs["mlm_select"].numpy()
        assert select.dtype == np.bool_ and select.shape == original.shape
        ordinary = ~np.isin(original, special)
        assert not (select & ~ordinary).any(), "a special token was chosen"
        assert np.array_equal(batch.targets["mlm_labels"].numpy(), original[select])  # row-major, as x[select]
        assert np.array_equal(tokens[~select], original[~select])
        changed = tokens[select]
        assert not np.isin(changed[changed != text.specials.mask], special).any(), "a random token was a special"
        chosen_n, ordinary_n = chosen_n + select.sum(), ordinary_n + ordinary.sum()
        masked += (changed == text.specials.mask).sum()
        kept += (changed == original[select]).sum()
        randomised += ((changed != text.specials.mask) & (changed != original[select])).sum()
    assert ordinary_n > 75_000
    assert within(chosen_n / ordinary_n, 0.15, 0.006), chosen_n / ordinary_n
    assert within(masked / chosen_n, 0.80, 0.016), masked / chosen_n
    assert within(randomised / chosen_n, 0.10, 0.012), randomised / chosen_n
    assert within(kept / chosen_n, 0.10, 0.012), kept / chosen_n


def words(strings: list[str], kind: str) -> list[list[int]]:
    """Positions of each word, from token strings: WordPiece continues with "##", byte-level BPE starts with
    "Ġ" (a space; or "Ċ", "ĉ": a newline or tab)."""
    out: list[list[int]] = []
    for i, s in enumerate(strings):
        continues = s.startswith("##") if kind == "wordpiece" else not s.startswith(("\u0120", "\u010a", "\u0109"))
        if continues and out and i > 0:
            out[-1].append(i)
        else:
            out.append([i])
    return out


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_whole_word_masking_chooses_every_piece_of_a_word(texts: dict[str, Text], kind: str) -> None:
    text = texts[kind]
    src = text.source("mlm", whole_word=True)
    multi = whole = chosen_n = ordinary_n = 0
    special = text.specials.all()
    for first in range(0, 320, 16):
        original = text.raw("bert", first, 16).inputs["tokens"].numpy()
        select = src.get(first, 16).inputs["mlm_select"].numpy()
        chosen_n += select.sum()
        ordinary_n += (~np.isin(original, sorted(special))).sum()
        for row, picked in zip(original, select):
            strings = [text.tok.token(int(t)) if int(t) not in special else "[S]" for t in row]
            for word in words(strings, kind):
                if any(int(row[i]) in special for i in word):
                    continue
                if len(word) > 1 and picked[word].any():
                    multi += 1
                    whole += picked[word].all()
    assert multi > 200, multi  # the test saw many chosen multi-piece words
    assert whole == multi, f"{multi - whole} of {multi} chosen multi-piece words were only partly chosen"
    assert within(chosen_n / ordinary_n, 0.15, 0.02), chosen_n / ordinary_n


# -- next-sentence prediction ------------------------------------------------------------------

def contiguous(store: TokenStore, seq: np.ndarray) -> bool:
    """Whether `seq` occurs as consecutive tokens of the stream."""
    stream = store.window(0, len(store))
    starts = np.flatnonzero(stream[: len(stream) - len(seq) + 1] == seq[0])
    return any(np.array_equal(stream[s : s + len(seq)], seq) for s in starts)


def test_nsp_pairs_are_half_next_half_random_with_segments(texts: dict[str, Text]) -> None:
    text = texts["wordpiece"]
    s = text.specials
    labels = np.concatenate([text.raw("pairs", first, 50).targets["nsp_labels"].numpy() for first in range(0, 2000, 50)])
    assert set(labels.tolist()) == {0, 1}
    assert within(labels.mean(), 0.5, 0.045), labels.mean()  # 1 = random, as BERT

    batch = text.raw("pairs", 0, 64)
    tokens, segments, mask = (batch.inputs[k].numpy() for k in ("tokens", "segments", "attention_mask"))
    assert tokens.shape == segments.shape == mask.shape == (64, SEQ)
    sentence_ends = 0
    for row, seg, m, label in zip(tokens, segments, mask, batch.targets["nsp_labels"].numpy()):
        n = int(m.sum())
        assert m[:n].all() and not m[n:].any() and (row[n:] == s.pad).all()
        seps = np.flatnonzero(row == s.sep)
        assert row[0] == s.cls and len(seps) == 2 and seps[1] == n - 1
        a, b = row[1 : seps[0]], row[seps[0] + 1 : n - 1]
        assert len(a) and len(b)
        assert (seg[: seps[0] + 1] == 0).all() and (seg[seps[0] + 1 : n] == 1).all() and (seg[n:] == 0).all()
        assert contiguous(text.store, np.concatenate([a, b])) == (label == 0), "is-next B must follow A, a random B not"
        sentence_ends += int(a[-1]) in s.sentence_ends
    assert sentence_ends > 0.8 * 64  # A is cut at a sentence end where the text has one


# -- T5 span corruption ------------------------------------------------------------------------

def restore(src: np.ndarray, target: np.ndarray, sentinels: tuple[int, ...]) -> np.ndarray:
    """Interleave encoder input and decoder target by sentinels: the original text."""
    spans: dict[int, list[int]] = {}
    current: list[int] = []
    for t in target.tolist():
        if t in sentinels:
            current = spans.setdefault(t, [])
        else:
            current.append(t)
    out: list[int] = []
    for t in src.tolist():
        out.extend(spans[t] if t in sentinels else [t])
    return np.array(out)


def test_span_corruption_sentinels_reconstruct_the_text(texts: dict[str, Text]) -> None:
    text = texts["unigram"]
    s = text.specials
    src = text.source("span_corruption")
    noise = total = spans = 0
    for first in range(0, 320, 16):
        original = text.raw("span_corruption", first, 16).targets["labels"].numpy()[:, :-1]
        batch = src.get(first, 16)
        inputs, labels, tgt = batch.inputs["src"].numpy(), batch.targets["labels"].numpy(), batch.inputs["tgt"].numpy()
        assert np.array_equal(batch.inputs["src_mask"].numpy(), (inputs != s.pad).astype(np.int64))
        assert np.array_equal(batch.inputs["tgt_mask"].numpy(), (labels != -100).astype(np.int64))
        assert (tgt[:, 0] == s.pad).all() and np.array_equal(tgt[:, 1:], np.where(labels[:, :-1] == -100, s.pad, labels[:, :-1]))
        for text_row, x, y in zip(original, inputs, labels):
            x, y = x[x != s.pad], y[y != -100]
            assert x[-1] == s.eos and y[-1] == s.eos
            x, y = x[:-1], y[:-1]
            used = [t for t in x.tolist() if t in s.sentinels]
            assert used == list(s.sentinels[: len(used)]) and y[0] == s.sentinels[0]  # <extra_id_0>, <extra_id_1>, ...
            assert np.array_equal(restore(x, y, s.sentinels), text_row)
            noise, total, spans = noise + len(y) - len(used), total + len(text_row), spans + len(used)
    assert within(noise / total, 0.15, 0.005), noise / total
    assert within(noise / spans, 3.0, 0.3), noise / spans


def test_t5_noise_mask_starts_with_kept_tokens_and_has_the_declared_spans() -> None:
    rng = np.random.default_rng(0)
    for length in (2, 3, 10, 127, 512):
        mask = noise_mask(length, 0.15, 3.0, rng)
        assert mask.shape == (length,) and not mask[0]
        runs = int((mask & ~np.concatenate([[False], mask[:-1]])).sum())
        noise = max(1, round(length * 0.15))
        assert mask.sum() == min(noise, length - 1) and runs == max(1, min(round(noise / 3), noise, length - noise))


def test_span_corruption_needs_sentinels_in_the_tokenizer(texts: dict[str, Text]) -> None:
    text = texts["wordpiece"]
    with pytest.raises(UserError, match=r"sentinels = 100"):
        LAYOUTS["span_corruption"](text.store, text.specials, SEQ, 0)


# -- BART denoising ----------------------------------------------------------------------------

def is_subsequence(small: np.ndarray, big: np.ndarray) -> bool:
    it = iter(big.tolist())
    return all(t in it for t in small.tolist())


def test_denoising_masks_30_percent_and_labels_are_the_original(texts: dict[str, Text]) -> None:
    text = texts["bpe"]
    s = text.specials
    src = text.source("denoising", permute_sentences=False)
    kept = total = 0
    for first in range(0, 320, 16):
        raw = text.raw("denoising", first, 16)
        batch = src.get(first, 16)
        labels = batch.targets["labels"].numpy()
        assert np.array_equal(labels, raw.targets["labels"].numpy()) and (labels[:, -1] == s.eos).all()
        tgt = batch.inputs["tgt"].numpy()
        assert (tgt[:, 0] == s.eos).all() and np.array_equal(tgt[:, 1:], labels[:, :-1])  # BART starts from EOS
        for x, m, y in zip(batch.inputs["src"].numpy(), batch.inputs["src_mask"].numpy(), labels):
            x = x[m.astype(bool)]
            assert x[-1] == s.eos and (x[len(x) :] == s.pad).all()
            plain = x[:-1][x[:-1] != s.mask]
            assert is_subsequence(plain, y[:-1])  # unpermuted: the kept tokens in their order
            kept, total = kept + len(plain), total + len(y) - 1
    assert within(1 - kept / total, 0.30, 0.01), 1 - kept / total


def test_denoising_spans_are_poisson_and_sentences_are_permuted(texts: dict[str, Text]) -> None:
    rng = np.random.default_rng(0)
    lengths = span_lengths(30_000, 3.0, rng)
    assert lengths.sum() == 30_000 and within(lengths[:-1].mean(), 3.0, 0.06) and within((lengths == 0).mean(), np.exp(-3), 0.01)
    spans = span_lengths(30, 3.0, np.random.default_rng(0))  # the spans infill draws first from the same stream
    assert (spans == 0).any()
    corrupted, masked = infill(np.arange(100), 0.3, 3.0, -1, np.random.default_rng(0))
    kept = corrupted[corrupted != -1]
    assert masked == 30 and len(kept) == 70 and (np.diff(kept) > 0).all()  # the other 70 tokens, in order
    assert (corrupted == -1).sum() == len(spans)  # one mask per span, a 0-length span inserting one

    sentences = ([5, 6, 0], [7, 0], [8, 9, 0], [4])  # "5 6 . 7 . 8 9 . 4" with "." = 0
    orders = {tuple(sum(order, [])) for order in itertools.permutations(sentences)}
    shuffled = {tuple(permute_sentences(np.array(sum(sentences, [])), frozenset({0}), np.random.default_rng(i)).tolist())
                for i in range(30)}
    assert shuffled <= orders and len(shuffled) > 6

    text = texts["bpe"]
    batch = text.source("denoising").get(0, 16)  # with permutation: the same tokens, masks aside
    for x, y in zip(batch.inputs["src"].numpy(), batch.targets["labels"].numpy()):
        plain = x[(x != text.specials.mask) & (x != text.specials.pad)]
        assert not (np.bincount(plain, minlength=2048) > np.bincount(y, minlength=2048)).any()


# -- determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("objective,kind", [("mlm", "wordpiece"), ("nsp", "wordpiece"), ("span_corruption", "unigram"),
                                            ("denoising", "bpe")])
def test_batches_are_a_pure_function_of_seed_and_index(texts: dict[str, Text], objective: str, kind: str) -> None:
    text = texts[kind]

    def get(seed: int, first: int) -> dict[str, torch.Tensor]:
        batch = text.source(objective, seed=seed).get(first, 8)
        return {**batch.inputs, **{f"target:{k}": v for k, v in batch.targets.items()}}

    a, b = get(0, 40), get(0, 40)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for other in (get(1, 40), get(0, 48)):
        assert not all(a[k].shape == other[k].shape and torch.equal(a[k], other[k]) for k in a)


# -- compatibility checks at `specc check` time ------------------------------------------------

def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`specc check ARGS` in-process: its exit status and what it printed to stderr."""
    status = main(["check", *args])
    return status, capsys.readouterr().err


CAUSAL_BERT = ["--set", "blocks.encoder_layer.nodes.attention.causal=true"]


@pytest.mark.parametrize("base,objective,extra,fragments", [
    ("bert-base-pretraining.toml", "mlm", CAUSAL_BERT,
     ["error[E066]", "masked LM needs bidirectional self-attention, but 'layer.0.attention' is causal"]),
    ("gpt2-small.toml", "mlm", [], ["error[E066]", "error[E061]", "reads model output 'mlm_logits'"]),
    ("bert-base-pretraining.toml", "span_corruption", [], ["error[E067]", "span corruption needs an encoder-decoder"]),
    ("bert-base-pretraining.toml", "denoising", [], ["error[E067]", "denoising needs an encoder-decoder"]),
    ("t5-small.toml", "nsp", [], ["error[E061]", "feeds model input 'tokens'", "reads model output 'nsp_logits'"]),
])
def test_check_refuses_an_objective_that_does_not_fit(capsys: pytest.CaptureFixture[str], tmp_path: Path, base: str,
                                                      objective: str, extra: list[str], fragments: list[str]) -> None:
    spec = tmp_path / "misfit.toml"
    spec.write_text(f'format = 1\nextends = "{os.path.relpath(SPECS / base, tmp_path)}"\n\n[objective.{objective}]\n')
    status, err = check(capsys, str(spec), "--search-path", str(SPECS), *extra)
    assert status == 1 and "Traceback" not in err, err
    for fragment in [*fragments, f"{spec}:4:"]:  # at the [objective.*] table
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize("spec", ["bert-tiny.toml", "t5-tiny.toml", "bart-tiny.toml"])
def test_reference_pretraining_specs_check(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    assert check(capsys, str(SPECS / spec)) == (0, "")


# -- short training runs: the loss falls --------------------------------------------------------

SMALL = ["params.layers=2", "params.d_model=64", "params.heads=2", "params.vocab=1024", "data.max_documents=120",
         "train.steps=40", "train.batch_size=8", "train.seq_len=64", "train.warmup=5", "train.log_every=1",
         "train.eval_every=1000", "train.eval_batches=2", "train.save_every=1000", "train.lr=3e-3"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Train on one thread: tiny models gain nothing from more, and lose much when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train(spec: str, out: Path, *extra: str) -> list[dict[str, Any]]:
    jobs.train(str(SPECS / spec), str(out), None, [*SMALL, *extra], quiet=True, say=lambda line: None)
    return [r for r in metrics(out) if "loss" in r]


def falls(losses: list[float], by: float) -> bool:
    return float(np.mean(losses[:5])) - float(np.mean(losses[-5:])) > by


@pytest.mark.parametrize("spec,extra,key", [
    ("bert-tiny.toml", [], "loss_mlm"),  # MLM + NSP together
    ("t5-tiny.toml", ["params.head_dim=32", "params.d_ff=256", "tokenizer.sentinels=20"], "loss_span"),
    ("bart-tiny.toml", ["params.d_ff=256"], "loss_denoise"),
])
def test_a_short_run_lowers_the_loss(tmp_path: Path, one_thread: None, spec: str, extra: list[str], key: str) -> None:
    rows = train(spec, tmp_path / "run", *extra)
    assert len(rows) == 40
    assert falls([r[key] for r in rows], by=0.5), [round(r[key], 3) for r in rows]
    for r in rows:  # the loss is the sum of the objectives' losses; accuracies are logged beside it, not added
        assert r["loss"] == pytest.approx(sum(v for k, v in r.items() if k.startswith("loss_")))
    if spec == "bert-tiny.toml":
        assert all(0 <= r["acc_mlm"] <= 1 and 0 <= r["acc_nsp"] <= 1 and 0.5 < r["loss_nsp"] < 1.0 for r in rows)


def topic_corpus(path: Path) -> None:
    """60 documents of made-up words, each with its own 12 words: a B from another document is plain to see."""
    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "zu", "ga", "fe", "do", "ri", "mu", "sa", "bo", "ni",
                 "te", "yu"]
    docs = []
    for _ in range(60):
        vocab = ["".join(rng.choice(syllables) for _ in range(3)) for _ in range(12)]
        docs.append(" ".join(" ".join(rng.choice(vocab) for _ in range(rng.randint(4, 9))).capitalize() + "."
                             for _ in range(40)))
    path.write_text("\n\n\n".join(docs) + "\n")


@pytest.mark.slow
def test_next_sentence_prediction_learns(tmp_path: Path, one_thread: None) -> None:
    """NSP is slow to start on a tiny model (flat for a few hundred steps), hence a corpus where it is easy, and 600 steps."""
    topic_corpus(tmp_path / "topics.txt")
    spec = tmp_path / "nsp.toml"
    spec.write_text(f'format = 1\nextends = "{os.path.relpath(SPECS / "bert-base-pretraining.toml", tmp_path)}"\n'
                    '[tokenizer]\nkind = "wordpiece"\nlowercase = true\nvocab_size = "vocab"\n'
                    '[data]\nsource = "text"\npath = "topics.txt"\n[objective.nsp]\n')
    out = tmp_path / "run"
    jobs.train(str(spec), str(out), None, [*SMALL, "params.max_seq=128", "params.dropout=0.0", "train.steps=600",
               "train.batch_size=16", "train.lr=1e-3", "train.betas=[0.9, 0.999]", "train.warmup=10"],
               search_paths=[str(SPECS)], quiet=True, say=lambda line: None)
    losses = [r["loss_nsp"] for r in metrics(out) if "loss_nsp" in r]
    assert np.mean(losses[:100]) - np.mean(losses[-100:]) > 0.05, (np.mean(losses[:100]), np.mean(losses[-100:]))
