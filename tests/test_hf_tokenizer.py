"""Tokenizers of Hugging Face directories: `tokenizer.json` used as-is, batches padded as `transformers` pads them.

The tokenizer files are made in code with `tokenizers` (a small WordPiece
vocabulary with BERT's [CLS] ... [SEP] template), some with padding and
truncation baked into `tokenizer.json`, and compared with `transformers`'
`PreTrainedTokenizerFast` reading the same folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from specc.cli import main
from specc.hf import HFTokenizer, load_pretrained

from hf_cases import BY_ID, TOL, max_diff, save, transformers

CORPUS = ["The import statement combines two operations.", "It searches for the named module, then binds it.",
          "A tuple is an immutable sequence.", "Lists are mutable sequences of items."] * 5
TEXTS = ["The import statement binds a module", "Tuples are immutable.", "It", "searches for the named module, "
         "then it binds the results of that search to a name in the local scope"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_tokenizer(folder: Path, baked: bool, config: dict[str, Any] | None) -> Path:
    """A WordPiece tokenizer.json (+ tokenizer_config.json) in `folder`; `baked` stores fixed-length
    padding and truncation in tokenizer.json itself, as some published files do."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=100, special_tokens=SPECIALS, show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    if baked:
        tok.enable_padding(length=24, pad_id=0, pad_token="[PAD]", direction="left")
        tok.enable_truncation(max_length=10)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", **config}))
    return folder


BERT_CONFIG = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
               "mask_token": {"__type": "AddedToken", "content": "[MASK]", "lstrip": False, "normalized": False, "rstrip": False,
                              "single_word": False, "special": True},
               "model_max_length": 32}


@pytest.mark.parametrize("baked, config", [
    (False, BERT_CONFIG),
    (True, BERT_CONFIG),  # baked fixed padding and truncation are per-call settings, as in transformers
    (True, {**BERT_CONFIG, "padding_side": "right"}),
    (True, {k: v for k, v in BERT_CONFIG.items() if k != "pad_token"}),  # the pad token comes from the baked padding
], ids=["plain", "baked-left", "baked-config-right", "baked-pad-token"])
@pytest.mark.parametrize("call", [
    {"padding": True}, {"padding": False}, {"padding": True, "truncation": True, "max_length": 6},
    {"padding": True, "truncation": True}, {"padding": True, "add_special_tokens": False},
], ids=["longest", "no-padding", "truncate-6", "truncate-model-max", "no-specials"])
def test_batches_equal_transformers(tmp_path: Path, baked: bool, config: dict[str, Any], call: dict[str, Any]) -> None:
    folder = make_tokenizer(tmp_path, baked, config)
    ours = HFTokenizer.from_dir(folder)
    assert ours is not None
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    expected = theirs(TEXTS, return_tensors="pt" if call["padding"] else None, **call)
    got = ours(TEXTS, **call)
    assert {"input_ids", "attention_mask"} <= set(expected)
    for key in (k for k in ("input_ids", "attention_mask", "token_type_ids") if k in expected):
        if call["padding"]:
            assert torch.equal(got[key], expected[key]), key
        else:
            assert got[key] == expected[key], key


@torch.no_grad()
def test_imported_directory_brings_its_tokenizer_and_padded_batches_match(tmp_path: Path) -> None:
    """An HF folder with a model and a baked tokenizer: the same padded batch, the same outputs."""
    case = BY_ID["bert-mlm"]
    hf = case.build()
    folder = make_tokenizer(save(hf, tmp_path / "hf"), baked=True, config=BERT_CONFIG)
    pre = load_pretrained(folder)
    assert pre.tokenizer is not None and pre.tokenizer.token_id("mask") == 4
    batch = pre.tokenizer(TEXTS[:2], padding=True)
    expected = transformers.AutoTokenizer.from_pretrained(folder)(TEXTS[:2], padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    ref = hf(**expected).logits
    out = pre.model(tokens=batch["input_ids"], segments=batch["token_type_ids"], attention_mask=batch["attention_mask"])
    keep = batch["attention_mask"].bool()
    assert max_diff(out["mlm_logits"][keep], ref[keep]) <= TOL

    assert main(["import-hf", str(folder), "-o", str(tmp_path / "bert.toml")]) == 0
    for name in ("tokenizer.json", "tokenizer_config.json"):  # kept as they were
        assert (tmp_path / "bert" / name).read_bytes() == (folder / name).read_bytes()
