"""Hugging Face tokenizer files: `tokenizer.json` used as-is, special tokens and padding as `transformers` does.

A `tokenizer.json` may carry padding and truncation settings of its own (a
fixed length, a direction). `transformers`' `PreTrainedTokenizerFast` takes
them as defaults (pad token, padding side) and then sets padding and truncation
per call; `HFTokenizer` does the same, so its padded batches equal
`transformers`'.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from tokenizers import Tokenizer
from tokenizers.processors import TemplateProcessing

from specc import jsonfile
from specc.hf.files import HFFormatError, read_json

ROLES = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
# Token strings that play a role when no tokenizer_config.json says so (specc's own tokenizers, BERT, BPE models).
_GUESSES = {
    "pad": ("<pad>", "[PAD]"), "unk": ("<unk>", "[UNK]"), "mask": ("<mask>", "[MASK]"), "cls": ("[CLS]", "<s>"),
    "sep": ("[SEP]", "</s>"), "bos": ("<s>", "<|endoftext|>"), "eos": ("</s>", "<|endoftext|>"),
}


@dataclass
class HFTokenizer:
    """A `tokenizers.Tokenizer` plus its special tokens by role and its padding side."""

    tok: Tokenizer
    specials: dict[str, str] = field(default_factory=dict)  # role ("pad", "eos", ...) → token string
    padding_side: str = "right"
    model_max_length: int | None = None
    input_names: list[str] | None = None  # `model_input_names` ("token_type_ids" too for a model with segments)

    @classmethod
    def from_dir(cls, folder: str | os.PathLike[str]) -> HFTokenizer | None:
        """The tokenizer of an HF directory, or None without `tokenizer.json`."""
        root = Path(folder)
        if not (root / "tokenizer.json").is_file():
            return None
        config = {**_json(root / "special_tokens_map.json"), **_json(root / "tokenizer_config.json")}
        return cls.from_file(root / "tokenizer.json", config)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], config: dict[str, Any] | None = None) -> HFTokenizer:
        """`tokenizer.json` with `tokenizer_config.json`'s settings (special tokens, padding side); roles the
        config does not name are guessed from common token strings."""
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers reports every failure as a bare Exception
            raise HFFormatError(f"{path}: cannot read the tokenizer: {err}") from None
        config = config or {}
        baked = tok.padding or {}
        try:
            specials = {role: _content(config[f"{role}_token"]) for role in ROLES if config.get(f"{role}_token")}
        except ValueError as err:
            raise HFFormatError(f"{Path(path).parent}: special_tokens_map.json or tokenizer_config.json: {err}") from None
        if "pad" not in specials and baked.get("pad_token"):
            specials["pad"] = baked["pad_token"]
        if not config:
            vocab = tok.get_vocab()
            for role, names in _GUESSES.items():
                found = next((n for n in names if n in vocab), None)
                if role not in specials and found is not None:
                    specials[role] = found
        side = config.get("padding_side") or baked.get("direction", "right")
        if side not in ("left", "right"):
            raise HFFormatError(f"{Path(path).parent}: tokenizer_config.json: padding_side {side!r} is neither 'left' "
                                "nor 'right'")
        limit = config.get("model_max_length")
        tok.no_padding()  # set per call, as transformers does
        tok.no_truncation()
        fits = isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < 10**9  # else: no limit (HF's 1e30)
        return cls(tok, specials, side, limit if fits else None)

    def token_id(self, role: str) -> int | None:
        token = self.specials.get(role)
        return self.tok.token_to_id(token) if token is not None else None

    def __call__(self, texts: Sequence[str], padding: bool = True, truncation: bool = False,
                 max_length: int | None = None, add_special_tokens: bool = True) -> dict[str, Any]:
        """`input_ids`, `attention_mask` (and `token_type_ids`): (B, T) tensors when padded, else lists."""
        limit = max_length or self.model_max_length
        if truncation and limit:
            self.tok.enable_truncation(limit)
        if padding:
            pad_id = self.token_id("pad")
            if pad_id is None:
                raise ValueError("this tokenizer has no pad token, so it cannot pad a batch")
            self.tok.enable_padding(direction=self.padding_side, pad_id=pad_id, pad_token=self.specials["pad"])
        try:
            encs = self.tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        finally:
            self.tok.no_padding()
            self.tok.no_truncation()
        out = {"input_ids": [e.ids for e in encs], "attention_mask": [e.attention_mask for e in encs],
               "token_type_ids": [e.type_ids for e in encs]}
        return {k: torch.tensor(v) for k, v in out.items()} if padding else out

    def with_cls_sep(self, cls: int, sep: int, segments: bool) -> HFTokenizer:
        """A copy that frames inputs as a fine-tuned encoder reads them: ``cls A sep`` and, for a pair,
        ``cls A sep B sep`` with B's tokens in segment 1 (what `transformers`' pipelines then feed it; the
        segment ids only to a model that reads `segments`)."""
        c, s = self.tok.id_to_token(cls), self.tok.id_to_token(sep)
        tok = Tokenizer.from_str(self.tok.to_str())
        tok.post_processor = TemplateProcessing(single=f"{c}:0 $A:0 {s}:0", pair=f"{c}:0 $A:0 {s}:0 $B:1 {s}:1",
                                                special_tokens=sorted({(c, cls), (s, sep)}))
        names = ["input_ids", *(["token_type_ids"] if segments else []), "attention_mask"]
        return HFTokenizer(tok, dict(self.specials), self.padding_side, self.model_max_length, names)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def config(self) -> dict[str, Any]:
        """`tokenizer_config.json` for `transformers`' `PreTrainedTokenizerFast`."""
        out: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "padding_side": self.padding_side}
        if self.model_max_length:
            out["model_max_length"] = self.model_max_length
        if self.input_names:
            out["model_input_names"] = self.input_names
        out.update({f"{role}_token": token for role, token in self.specials.items()})
        return out


def _content(value: Any) -> str:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict."""
    content = value.get("content") if isinstance(value, dict) else value
    if not isinstance(content, str):
        raise ValueError(f"special token {value!r} is neither a string nor an object with a 'content' string")
    return content


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise HFFormatError(f"{path}: expected a JSON object, found {jsonfile.kind(data)}")
    return data
