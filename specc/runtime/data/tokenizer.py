"""Tokenizers with Hugging Face `tokenizers`: byte-level BPE, WordPiece, Unigram.

Trained from the declared corpus with the declared vocabulary size and special
tokens, cached by a hash of (corpus, settings), and saved with every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from specc.atomic import atomic_file
from specc.runtime.config import TokenizerConfig
from specc.runtime.errors import UserError

if TYPE_CHECKING:  # imported where a tokenizer is loaded or trained: `specc check` reads only `Specials` here
    from tokenizers import Tokenizer, trainers

SPECIALS = {
    "bpe": ["<pad>", "<|endoftext|>", "<mask>", "<unk>"],
    "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "unigram": ["<pad>", "</s>", "<unk>", "<mask>"],
}
# Characters a Unigram vocabulary always holds, seen in its corpus or not: trained on English text it
# would otherwise lack "ü" or "é", read them as <unk> and drop them when decoding (a translation into
# German lost every umlaut). Printable ASCII and the Latin-1 letters (À … ÿ). Byte-level BPE has every
# byte; WordPiece models stay as trained.
UNIGRAM_ALPHABET = [chr(c) for c in range(0x21, 0x7F)] + [c for c in map(chr, range(0xC0, 0x100)) if c.isalpha()]


@dataclass(frozen=True)
class Specials:
    """Ids of the special tokens every objective and task needs."""

    pad: int
    eos: int  # document separator / end of sequence
    cls: int  # start of a BERT-style input (BPE and Unigram reuse eos/pad conventions)
    sep: int
    mask: int
    unk: int | None
    sentinels: tuple[int, ...]
    # Token classes the objectives cut text by (MLM whole words, NSP segments, BART sentences).
    continuations: frozenset[int] = frozenset()  # pieces inside a word: WordPiece "##x", BPE without a leading space
    sentence_ends: frozenset[int] = frozenset()  # tokens that decode to ".", "!", "?" or a newline

    def all(self) -> set[int]:
        ids = {self.pad, self.eos, self.cls, self.sep, self.mask, *self.sentinels}
        return ids | ({self.unk} if self.unk is not None else set())


HEAD_WINDOW = 4096  # characters `encode_head` reads first (or 16 per token wanted, if more)


def head_cut(text: str, end: int, start: int = 0) -> tuple[int, bool]:
    """Where to cut `text[start:]` at or before `end` so that its pieces encode as the whole text does: before
    a space that follows a non-space (True), found in the second half of start..end; else `end` itself
    (False: a stretch without spaces is cut hard)."""
    half = start + (end - start) // 2
    at = text.rfind(" ", half, end + 1)
    while at > half and text[at - 1].isspace():
        at = text.rfind(" ", half, at)
    return (at, True) if at > half else (end, False)


class TextTokenizer:
    """A trained `tokenizers.Tokenizer` plus the ids of its special tokens."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.specials = _specials(tok)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def encode_head(self, text: str, limit: int) -> list[int]:
        """The first `limit` tokens of `text` (at most), encoding only a prefix of it: a 10 MB review cut to
        128 tokens must not cost the 2 GB its whole encoding takes. Exact for every tokenizer that starts a
        new piece at a space after a non-space (the byte-level BPE, WordPiece and Unigram ones specc
        trains): the prefix ends there (`head_cut`)."""
        return self.head_and_whole(text, limit)[0]

    def head_and_whole(self, text: str, limit: int) -> tuple[list[int], list[int] | None]:
        """`encode_head`, and the whole text's ids when it encoded all of it anyway (every text shorter than its
        window, i.e. nearly all): what a report on untruncated lengths reads without tokenizing again."""
        window = max(HEAD_WINDOW, 16 * limit)
        while len(text) > window:
            cut, exact = head_cut(text, window)
            ids = self.encode(text[:cut])
            if len(ids) >= (limit if exact else 2 * limit):  # a hard cut may change the last few pieces only
                return ids[:limit], None
            window *= 4
        ids = self.encode(text)
        return ids[:limit], ids

    def encode_heads(self, texts: list[str], limit: int) -> list[list[int]]:
        """`encode_head` of each text; short texts (all of them, usually) in one batch over every core."""
        short = [i for i, t in enumerate(texts) if len(t) <= max(HEAD_WINDOW, 16 * limit)]
        out: list[list[int]] = [[] for _ in texts]
        for i, ids in zip(short, self.encode_batch([texts[i] for i in short])):
            out[i] = ids[:limit]
        for i in sorted(set(range(len(texts))) - set(short)):
            out[i] = self.encode_head(texts[i], limit)
        return out

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tok.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special)

    def token(self, i: int) -> str:
        return self.tok.id_to_token(i) or ""

    def save(self, path: str | Path) -> None:
        self.tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        """A saved ``tokenizer.json``; a missing or damaged file is a `UserError` naming it."""
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers reports every failure as a bare Exception
            raise UserError(f"cannot read tokenizer {path}: {err}") from None
        # Token stores hold ids in the smallest dtype the vocabulary size allows: ids past it would overflow there.
        size, top = tok.get_vocab_size(), max(tok.get_vocab().values(), default=-1)
        if top >= size:
            raise UserError(f"cannot read tokenizer {path}: its token ids run to {top:,} but it has {size:,} tokens "
                            f"(ids must be 0 to {size - 1:,}); the file is damaged")
        try:
            return cls(tok)
        except ValueError as err:  # no pad, end-of-sequence or mask token
            raise UserError(f"cannot read tokenizer {path}: {err}") from None

    def fingerprint(self) -> str:
        return hashlib.sha256(self.tok.to_str().encode()).hexdigest()[:16]


def _specials(tok: Tokenizer) -> Specials:
    vocab = tok.get_vocab()

    def first(*names: str) -> int | None:
        return next((vocab[n] for n in names if n in vocab), None)

    pad = first("<pad>", "[PAD]")
    eos = first("<|endoftext|>", "</s>", "[SEP]")
    mask = first("<mask>", "[MASK]")
    if pad is None or eos is None or mask is None:
        raise ValueError("tokenizer lacks a pad, end-of-sequence or mask token")
    numbered = sorted((int(t[10:-1]), i) for t, i in vocab.items() if t.startswith("<extra_id_"))  # <extra_id_N>
    sentinels = [i for _, i in numbered]
    specials = Specials(pad=pad, eos=eos, cls=first("[CLS]", "<|endoftext|>", "</s>") or eos,
                        sep=first("[SEP]", "<|endoftext|>", "</s>") or eos, mask=mask, unk=first("<unk>", "[UNK]"),
                        sentinels=tuple(sentinels))
    continuations, sentence_ends = _token_classes(tok, specials.all())
    return dataclasses.replace(specials, continuations=continuations, sentence_ends=sentence_ends)


_WORD_START = ("\u0120", "\u010a", "\u0109", "\u2581", "\n")  # byte-level space, newline, tab; metaspace; newline


def _token_classes(tok: Tokenizer, special: set[int]) -> tuple[frozenset[int], frozenset[int]]:
    """Word-continuation pieces and sentence-ending tokens, from the token strings.

    A WordPiece piece continues a word when it starts with "##"; a byte-level BPE or
    Unigram token starts a word when it starts with a (byte-level or metaspace) space
    or newline. A token ends a sentence when it decodes to ".", "!" or "?" (with any
    whitespace around it), or to whitespace holding a newline.
    """
    from tokenizers import models

    size = tok.get_vocab_size()
    strings = [tok.id_to_token(i) or "" for i in range(size)]
    if isinstance(tok.model, models.WordPiece):
        prefix = tok.model.continuing_subword_prefix
        cont = {i for i, s in enumerate(strings) if s.startswith(prefix)}
    else:
        cont = {i for i, s in enumerate(strings) if not s.startswith(_WORD_START)}
    ends = set()
    for i, text in enumerate(tok.decode_batch([[i] for i in range(size)], skip_special_tokens=False)):
        core = text.strip()
        if core in (".", "!", "?") or (not core and "\n" in text):
            ends.add(i)
    return frozenset(cont - special), frozenset(ends - special)


def cache_dir() -> Path:
    root = os.environ.get("SPECC_CACHE") or Path.home() / ".cache" / "specc"
    return Path(root)


def build_tokenizer(cfg: TokenizerConfig, texts: Iterable[str], corpus_fingerprint: str) -> TextTokenizer:
    """Load `cfg.path`, or train per `cfg` on `texts` (cached by corpus and settings)."""
    if cfg.path is not None:
        return TextTokenizer.load(cfg.path)
    settings = [cfg.model_dump(), corpus_fingerprint] + ([UNIGRAM_ALPHABET] if cfg.kind == "unigram" else [])
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    cached = cache_dir() / "tokenizers" / f"{key}.json"
    if cached.exists():
        return TextTokenizer.load(cached)
    tok = _train(cfg, texts)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(cached) as tmp:
        tok.save(str(tmp))
    return TextTokenizer(tok)


def _train(cfg: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = SPECIALS[cfg.kind] + [f"<extra_id_{i}>" for i in range(cfg.sentinels)]
    trainer: trainers.Trainer
    if cfg.kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=specials, min_frequency=cfg.min_frequency,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif cfg.kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, special_tokens=specials,
                                            min_frequency=cfg.min_frequency, show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=cfg.vocab_size, special_tokens=specials, unk_token="<unk>",
                                          initial_alphabet=UNIGRAM_ALPHABET, show_progress=False)
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if cfg.lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.train_from_iterator(_chunks(_sample(texts, cfg)), trainer=trainer)
    return tok


def _sample(texts: Iterable[str], cfg: TokenizerConfig) -> Iterator[str]:
    """The documents of the first `sample_bytes` of text (UTF-8), at most `sample_docs` of them."""
    size = 0
    for i, text in enumerate(texts):
        if size >= cfg.sample_bytes or (cfg.sample_docs is not None and i >= cfg.sample_docs):
            return
        size += len(text.encode())
        yield text


def _chunks(texts: Iterable[str], size: int = 100_000) -> Iterator[str]:
    """Split long documents into pieces so the trainer's memory stays bounded."""
    for text in texts:
        for i in range(0, len(text), size):
            yield text[i : i + size]
