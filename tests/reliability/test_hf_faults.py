"""Hostile Hugging Face folders for `import-hf` (issue 23, findings 9 and 7's import): a clear error naming the file,
and nothing written.

`config.json`, the shard index and `tokenizer_config.json` nested deep or holding huge integers, and
`special_tokens_map.json` with `{"unk_token": {"a": 1}}`, were tracebacks; NaN weights and F32 data whose header
says I32 were imported as garbage with exit status 0.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from reltools import assert_clean_error, run_main
from runtools import GPT_TINY, sets
from test_run_folder_faults import _as_int, _poison

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "7" * 5000


@pytest.fixture(scope="module")
def hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from specc.cli import main
    from specc.runtime.train.jobs import train

    tmp = tmp_path_factory.mktemp("hf-faults")
    train(GPT_TINY, str(tmp / "gpt"), None, sets("train.steps=2", "train.save_every=2")[1::2], quiet=True,
          say=lambda _: None)
    assert main(["export-hf", str(tmp / "gpt"), "-o", str(tmp / "hf")]) == 0
    return tmp / "hf"


def _with_key(name: str, text: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = json.loads((folder / name).read_text()) if (folder / name).exists() else {}
        raw = json.dumps(data)
        (folder / name).write_text(raw[:-1] + (", " if data else "") + f'"x_hostile": {text}}}')
    return damage


def _indexed(text: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        (folder / "model.safetensors").unlink()
        (folder / "model.safetensors.index.json").write_text(text)
    return damage


def _only_special_tokens_map(folder: Path, text: str) -> None:
    """The map as the only word on special tokens (tokenizer_config.json's would take precedence)."""
    (folder / "tokenizer_config.json").unlink()
    (folder / "special_tokens_map.json").write_text(text)


# damage → (what it does to the folder, the file it names, the expected message)
DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "config.json nested deep": (_with_key("config.json", DEEP), "config.json", "nested more than 64 deep"),
    "config.json with a 5,000-digit integer": (_with_key("config.json", HUGE), "config.json",
                                               "an integer of 5000 digits (at most 40)"),
    "config.json with a lone surrogate": (_with_key("config.json", '"\\ud800"'), "config.json", "lone UTF-16 surrogate"),
    "shard index nested deep": (_indexed('{"weight_map": ' + DEEP + "}"), "model.safetensors.index.json",
                                "nested more than 64 deep"),
    "shard index with a 5,000-digit integer": (_indexed('{"weight_map": {}, "metadata": {"total_size": ' + HUGE + "}}"),
                                               "model.safetensors.index.json", "an integer of 5000 digits"),
    "shard index a list": (_indexed("[]"), "model.safetensors.index.json", "'weight_map' must map tensor names"),
    "tokenizer_config.json nested deep": (_with_key("tokenizer_config.json", DEEP), "tokenizer_config.json",
                                          "nested more than 64 deep"),
    "tokenizer_config.json with a 5,000-digit integer": (_with_key("tokenizer_config.json", HUGE), "tokenizer_config.json",
                                                         "an integer of 5000 digits"),
    "special_tokens_map.json with an unk_token table": (
        lambda f: _only_special_tokens_map(f, '{"unk_token": {"a": 1}}'), "",
        "special token {'a': 1} is neither a string nor an object with a 'content' string"),
    "padding_side a number": (lambda f: (f / "tokenizer_config.json").write_text('{"padding_side": 5}'), "",
                              "padding_side 5 is neither 'left' nor 'right'"),
    "NaN weights": (lambda f: _poison(f / "model.safetensors"), "", "holds NaN or infinite values"),
    "F32 weights called I32": (lambda f: _as_int(f / "model.safetensors") and None, "",
                               "is stored as torch.int32, not a floating-point type"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_hostile_hf_folder_is_a_clear_error_and_writes_nothing(capsys: pytest.CaptureFixture[str], hf: Path,
                                                                 tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "hf"
    shutil.copytree(hf, folder)
    change, name, expected = DAMAGE[damage]
    change(folder)
    if damage in READ_BY_THE_TOKENIZER:
        _tokenizer_refuses(folder, expected)
        return
    out = tmp_path / "out"
    done = run_main(capsys, "import-hf", str(folder), "-o", str(out / "imported.toml"))
    assert_clean_error(done, f"{folder / name}" if name else str(folder), expected)
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


# `import-hf` copies the tokenizer's files; they are read (and refused) where a tokenizer is built from them:
# `specc.hf.load_pretrained` and the checkpoints import-hf writes (specc.runtime.runs.interop.checkpoint_tokenizer).
READ_BY_THE_TOKENIZER = {"special_tokens_map.json with an unk_token table", "padding_side a number"}


def _tokenizer_refuses(folder: Path, expected: str) -> None:
    from specc.hf import HFFormatError, load_pretrained
    from specc.runtime.runs.interop import checkpoint_tokenizer

    for read in (load_pretrained, lambda f: checkpoint_tokenizer(f)):
        with pytest.raises(HFFormatError) as err:
            read(folder)
        assert str(folder) in str(err.value) and expected in str(err.value), str(err.value)
