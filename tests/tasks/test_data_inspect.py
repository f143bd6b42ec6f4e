"""`specc data inspect`: a task's splits, examples, labels and lengths as read, before any training."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import SPECS
from specc.cli import main

MODEL = ["params.layers=1", "params.d_model=32", "params.heads=2", "tokenizer.vocab_size=1024", "data.max_documents=80"]


def _inspect(capsys: pytest.CaptureFixture[str], spec: Path, *extra: str) -> tuple[int, str, str]:
    sets = [a for s in [*MODEL, *extra] for a in ("--set", s)]
    code = main(["data", "inspect", str(spec), "--search-path", str(SPECS), *sets])
    out, err = capsys.readouterr()
    return code, out, err


def _spec(tmp_path: Path, table: str) -> Path:
    rel = os.path.relpath(SPECS / "bert-tiny-ner.toml", tmp_path)
    spec = tmp_path / "ner.toml"
    spec.write_text(f'format = 1\nextends = "{rel}"\n\n[tasks.ner]\nfrom = ""\nmax_len = 16\n'
                    f'labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC"]\n[tasks.ner.data]\ndemo = ""\n{table}\n')
    return spec


def test_inspect_a_conll_task(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for k in range(10):
        words = [("Peter", "B-PER"), ("Blackburn", "I-PER")] if k % 2 else [("EU", "B-ORG"), ("rejects", "O"), ("German", "O"),
                                                                             ("calls", "O"), ("to", "O"), ("boycott", "O"),
                                                                             ("British", "O"), ("lamb", "O")]
        lines += [f"{w} NNP B-NP {t}" for w, t in words] + [""]
    (tmp_path / "eng.train").write_text("\n".join(lines))
    code, out, err = _inspect(capsys, _spec(tmp_path, 'train = "eng.train"'))
    assert code == 0, err
    assert f"  {tmp_path}/eng.train: 1 -DOCSTART- line (document boundaries) skipped" in out
    assert "train: 9 examples" in out and "validation: 1 examples" in out
    assert f'  {tmp_path}/eng.train:3: {{"tokens": ["EU", "rejects", ' in out
    # training: 5 long sentences (B-ORG + 7 O) and 4 short ones (B-PER I-PER); the 10th sentence is held out
    assert "  tags (per word): O 35 (72.9%), B-ORG 5 (10.4%), B-PER 4 (8.3%), I-PER 4 (8.3%)" in out
    cut = [line for line in out.splitlines() if line.startswith("  'tokens' length in tokens:")][0]
    assert cut.endswith("5 of 9 (55.6%) longer than 16 (max_len: cut)"), cut  # the long sentences of training


def test_inspect_names_a_bad_record_at_its_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "eng.train").write_text("EU NNP B-NP B-ORG\n\n" * 10 + "EU NNP B-NP B-ORG\nrejects VBZ B-VP B-XYZ\n")
    code, _, err = _inspect(capsys, _spec(tmp_path, 'train = "eng.train"'))
    assert code == 1 and "Traceback" not in err
    assert f"{tmp_path}/eng.train:21: unknown tag 'B-XYZ'" in err
