"""What `specc finetune` says about a translation corpus before training: tokens per word, unknown tokens,
and how many sources and targets the declared lengths cut short (with the length that keeps them whole)."""

from __future__ import annotations

from helpers import TINY_T5, records, runner

ROWS = records({"src": "Return the value", "tgt": "Gib den Wert zurück"},
               {"src": "Open the file and return a stream of the words in the string", "tgt": "Öffne die Datei"})


def test_translation_reports_coverage_and_truncation_of_both_sides() -> None:
    tok = runner("t5-tiny-translate.toml", sets=TINY_T5, kind="unigram").tok
    short, long = (len(tok.encode(r.get("src", str))) for r in ROWS)
    longest_tgt = max(len(tok.encode(r.get("tgt", str))) for r in ROWS)
    max_len = short + 1  # the short source and its end token fit; the long one is cut
    run = runner("t5-tiny-translate.toml", sets=[*TINY_T5, f"tasks.translate.max_len={max_len}",
                                                   f"tasks.translate.max_target_len={longest_tgt + 1}"], kind="unigram")
    source, target = run.describe(ROWS)
    words = 3 + 13
    assert source.startswith(f"sources: {(short + long) / words:.2f} tokens per word, 0 unknown of {short + long} (0.00 %)")
    assert source.endswith(f"1 of 2 (50.0 %) cut by max_len {max_len} (raise it to {long + 1} to keep them whole)")
    assert target.startswith("targets: ") and target.endswith(f"none cut by max_target_len {longest_tgt + 1}")


def test_unknown_target_tokens_are_counted() -> None:
    run = runner("t5-tiny-translate.toml", sets=TINY_T5, kind="unigram")
    unknown = "\u4e2d\u6587"  # two CJK characters: not in a vocabulary trained on English plus the Latin-1 letters
    _, target = run.describe(records({"src": "a b c", "tgt": unknown}))
    ids = run.tok.encode(unknown)
    assert ids.count(run.specials.unk) >= 1
    assert f"{ids.count(run.specials.unk)} unknown of {len(ids)} " in target
