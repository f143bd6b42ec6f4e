"""Slow: translation of real, technical English→German messages, not the demo's grammar.

The corpus is the system's gettext catalogs (benchmarks/mt_corpus.py: 8,000
training pairs of program messages with their human German translations). Both
an encoder-decoder (t5-tiny) and a decoder-only model (gpt-tiny) are fine-tuned
from random initialisation at their translation specs' settings, with the
corpus's files declared as a user declares theirs, and each must beat copying
the source (the task's trivial baseline, strong here: messages keep their
option names, paths and `%s`) on BLEU and chrF by a margin. Run with --runslow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SPECS

from benchmarks.mt_corpus import CATALOGS, SIZES, build, write
from specc.runtime.train.finetune import finetune

pytestmark = pytest.mark.slow

# spec → --set overrides that fit its lengths to the corpus (messages run to 30 words)
MODELS = {
    "t5-tiny-translate.toml": ["tasks.translate.max_len=96", "tasks.translate.max_target_len=128",
                               "tasks.translate.max_new_tokens=128"],
    "gpt-tiny-translate.toml": ["tasks.translate.max_len=96", "tasks.translate.max_target_len=128",
                                "tasks.translate.max_new_tokens=128", "params.max_seq=256"],
}
MARGIN = {"bleu": 2.0, "chrf": 5.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not CATALOGS.is_dir():
        pytest.skip(f"no German gettext catalogs at {CATALOGS}")
    pairs = build()
    if len(pairs.pairs) < sum(SIZES.values()):
        pytest.skip(f"only {len(pairs.pairs)} pairs in {CATALOGS}")
    return write(pairs, tmp_path_factory.mktemp("mt"))


# Measured 2026-12-03 (validation, random init, the specs' settings): gpt-tiny BLEU 8.9 / chrF 19.7, t5-tiny 10.9 / 20.8 (1,200 steps),
# copying the source 14.7 / 25.1; both losses were still falling. Strict: a recipe that passes must drop the mark.
@pytest.mark.xfail(strict=True, reason="issue 19: at the translation specs' 1,000-1,200 steps neither model beats copying "
                   "the source on the real corpus yet (docs/finetuning.md, 'The realistic corpus: not yet')")
@pytest.mark.parametrize("spec", sorted(MODELS))
def test_real_corpus_translation_beats_copying_the_source(spec: str, corpus: dict[str, Path], tmp_path: Path) -> None:
    data = [f'tasks.translate.data.{split}="{path}"' for split, path in corpus.items()]
    sets = [*data, 'tasks.translate.data.demo=""', 'tasks.translate.from=""', *MODELS[spec]]
    outcome = finetune(str(SPECS / spec), out=str(tmp_path / "run"), sets=sets, random_init=True, quiet=True,
                       say=lambda line: None)
    val = outcome.evaluations[0]
    assert val.baseline is not None
    print(f"\n{spec}: validation {val.metrics}, copying the source {val.baseline}")  # the figures, with -s
    for metric, margin in MARGIN.items():
        assert val.metrics[metric] > val.baseline[metric] + margin, (metric, val.metrics, val.baseline)
