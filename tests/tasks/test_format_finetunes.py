"""One toy fine-tune per published data format, end to end through `specc finetune`'s own code: the fixture is
written here in the format's exact published layout, the spec points a task at it as a user would, and the run
must read every example, say what its reader decided or passed over, train a few steps and score the splits.

Toy size (a 1-layer model, 4 steps): these check the data path, not learning; learning is test_finetune.py's.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from helpers import SPECS
from specc.runtime.train.finetune import FinetuneOutcome, finetune
from test_squad_v2 import squad_v2_file

MODEL = ["params.layers=1", "params.d_model=32", "params.heads=2", "tokenizer.vocab_size=1024", "data.max_documents=80"]
STEPS = 4
NER_LABELS = '["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC"]'  # bert-tiny-ner's head gives 6 scores

SENTENCES = [("EU", "B-ORG"), ("rejects", "O"), ("Peter", "B-PER"), ("Blackburn", "I-PER"), ("in", "O"), ("Brussels", "B-LOC")]


def _finetune(tmp_path: Path, base: str, task: str, table: str, *extra: str) -> tuple[FinetuneOutcome, list[str]]:
    """Fine-tune `task` of a spec extending `base` whose task table adds `table` (its data table included)."""
    rel = os.path.relpath(SPECS / base, tmp_path)
    spec = tmp_path / "task.toml"
    spec.write_text(f'format = 1\nextends = "{rel}"\n\n[tasks.{task}]\nfrom = ""\n{table}\n')
    sets = [*MODEL, f"tasks.{task}.train.steps={STEPS}", f"tasks.{task}.train.warmup=1",
            f"tasks.{task}.train.eval_every={STEPS}", f"tasks.{task}.train.save_every={STEPS}", *extra]
    said: list[str] = []
    outcome = finetune(str(spec), None, str(tmp_path / "run"), task, sets, [str(SPECS)], quiet=True, say=said.append)
    assert outcome.result.steps == STEPS
    return outcome, said


def _task_json(outcome: FinetuneOutcome) -> dict[str, Any]:
    ckpt = sorted((outcome.run_dir / "checkpoints").iterdir())[-1]
    return json.loads((ckpt / "task.json").read_text())


def _conll_sentences(n: int) -> str:
    out = ["-DOCSTART- -X- -X- O", ""]
    for k in range(n):
        for word, tag in SENTENCES[k % 3 * 2 : k % 3 * 2 + 2] + [("said", "O")]:
            out.append(f"{word} NNP B-NP {tag}")
        out.append("")
        if k == n // 2:
            out += ["-DOCSTART- -X- -X- O", ""]
    return "\n".join(out) + "\n"


def test_conll2003_as_published_with_a_gzipped_validation_file(tmp_path: Path) -> None:
    (tmp_path / "eng.train").write_text(_conll_sentences(12))
    with gzip.open(tmp_path / "eng.testa.gz", "wt") as fh:
        fh.write(_conll_sentences(4))
    outcome, said = _finetune(tmp_path, "bert-tiny-ner.toml", "ner", f'labels = {NER_LABELS}\n[tasks.ner.data]\ndemo = ""\n'
                              'train = "eng.train"\nvalidation = "eng.testa.gz"')
    assert said[1].startswith("data: eng.train, eng.testa.gz: 12 train / 4 validation / 0 test examples")
    assert f"data: {tmp_path}/eng.train: 2 -DOCSTART- lines (document boundaries) skipped" in said
    assert outcome.evaluations[0].examples == 4 and "entity_f1" in outcome.evaluations[0].metrics


def test_conllu_tags_a_named_column(tmp_path: Path) -> None:
    rows = ["# sent_id = {k}", "1\tDo\tdo\tAUX\t_\t_\t2\taux\t_\t_", "2\tgo\tgo\tVERB\t_\t_\t0\troot\t_\t_",
            "3\thome\thome\tADV\t_\t_\t2\tadvmod\t_\t_", "4\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_", ""]
    (tmp_path / "en_ewt-ud-train.conllu").write_text("\n".join("\n".join(rows).format(k=k) for k in range(10)))
    outcome, said = _finetune(tmp_path, "bert-tiny-ner.toml", "ner",
                              'labels = ["ADV", "AUX", "NOUN", "PRON", "PUNCT", "VERB"]\n[tasks.ner.data]\ndemo = ""\n'
                              'train = "en_ewt-ud-train.conllu"\ntags = "upos"')
    assert outcome.evaluations[0].examples == 1 and "token_accuracy" in outcome.evaluations[0].metrics
    assert any("CoNLL-U, one record per sentence" in s for s in said)


def test_a_headerless_tsv_with_declared_columns_and_label_names(tmp_path: Path) -> None:
    """CoLA's raw layout: source, label (0/1), original judgement, sentence; no header row."""
    lines = [f"gj04\t{k % 2}\t{'' if k % 2 else '*'}\tThe {'cat sat on the mat' if k % 2 else 'mat sat cat on'} {k}."
             for k in range(20)]
    (tmp_path / "in_domain_train.tsv").write_text("\n".join(lines) + "\n")
    table = ('[tasks.sentiment.data]\ndemo = ""\ntrain = "in_domain_train.tsv"\n'
             'columns = ["source", "label", "judgement", "sentence"]\ntext = "sentence"\n'
             'label_names = ["unacceptable", "acceptable"]')
    outcome, said = _finetune(tmp_path, "bert-tiny-sentiment.toml", "sentiment", table)
    assert f"data: {tmp_path}/in_domain_train.tsv: no header row; columns as declared: source, label, judgement, sentence" in said
    assert _task_json(outcome)["labels"] == ["acceptable", "unacceptable"]
    assert outcome.evaluations[0].examples == 2  # every 10th of 20 held out: no row lost to a header


def test_a_headerless_tsv_without_declared_columns_is_refused_at_line_1(tmp_path: Path) -> None:
    (tmp_path / "in_domain_train.tsv").write_text("gj04\t1\t\tThe cat sat.\ngj04\t0\t*\tCat the sat.\n")
    with pytest.raises(Exception, match=r"in_domain_train.tsv:1: the first row \('gj04', '1', '', 'The cat sat.'\) is read "
                                        r"as the header, but it names none of the fields the task reads \(text, label\)"):
        _finetune(tmp_path, "bert-tiny-sentiment.toml", "sentiment", '[tasks.sentiment.data]\ndemo = ""\ntrain = "in_domain_train.tsv"')
    assert not (tmp_path / "run").exists()


WORDS = [("the cat", "die Katze"), ("a dog", "ein Hund"), ("the house", "das Haus"), ("a tree", "ein Baum")]
T5 = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.head_dim=16", "params.d_ff=64",
      "tasks.translate.beam=1", "tasks.translate.max_new_tokens=6"]


def test_parallel_files_as_wmt_ships_them(tmp_path: Path) -> None:
    pytest.importorskip("sacrebleu")
    (tmp_path / "train.en").write_text("".join(f"{en} {k}\n" for k in range(5) for en, _ in WORDS))
    (tmp_path / "train.de").write_text("".join(f"{de} {k}\n" for k in range(5) for _, de in WORDS))
    (tmp_path / "newstest.en").write_text("the cat 9\na dog 9\n")
    (tmp_path / "newstest.de").write_text("die Katze 9\nein Hund 9\n")
    table = ('[tasks.translate.data]\ndemo = ""\ntrain = { src_file = "train.en", tgt_file = "train.de" }\n'
             'validation = { src_file = "newstest.en", tgt_file = "newstest.de" }')
    outcome, said = _finetune(tmp_path, "t5-tiny-translate.toml", "translate", table, *T5)
    assert f"data: {tmp_path}/train.en + {tmp_path}/train.de: 20 parallel lines" in said
    assert outcome.evaluations[0].examples == 2 and "bleu" in outcome.evaluations[0].metrics
    again = tmp_path / "again"
    again.mkdir()
    (again / "newstest.de").write_text("die Katze 9\n")  # one line short
    mismatched = table.replace('"train.', f'"{tmp_path}/train.').replace('"newstest.en', f'"{tmp_path}/newstest.en')
    with pytest.raises(Exception, match=rf"{again}/newstest.de has 1 lines but {tmp_path}/newstest.en has 2: parallel files"):
        _finetune(again, "t5-tiny-translate.toml", "translate", mismatched, *T5)
    assert not (again / "run").exists()


def test_jsonl_as_datasets_exports_translation_reads_nested_fields(tmp_path: Path) -> None:
    pytest.importorskip("sacrebleu")
    rows = [{"translation": {"de": de, "en": f"{en} {k}"}} for k in range(5) for en, de in WORDS]
    (tmp_path / "wmt16-train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = ('[tasks.translate.data]\ndemo = ""\ntrain = "wmt16-train.jsonl"\nsource = "translation.en"\n'
             'target = "translation.de"')
    outcome, _ = _finetune(tmp_path, "t5-tiny-translate.toml", "translate", table, *T5)
    assert outcome.evaluations[0].examples == 2


def _squad_v1(tmp_path: Path) -> Path:
    context = "Peter Blackburn lives in Brussels. The EU rejects the call."
    qas = [{"id": f"q{k}", "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]}
           for k, (q, a) in enumerate([("Who lives in Brussels?", "Peter Blackburn"), ("Where does Peter live?", "Brussels"),
                                       ("Who rejects the call?", "The EU")] * 4)]
    path = tmp_path / "train-v1.1.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "EU", "paragraphs": [{"context": context, "qas": qas}]}]}))
    return path


def test_squad_v1_json(tmp_path: Path) -> None:
    _squad_v1(tmp_path)
    outcome, said = _finetune(tmp_path, "bert-tiny-qa.toml", "qa", '[tasks.qa.data]\ndemo = ""\ntrain = "train-v1.1.json"')
    assert f"data: {tmp_path}/train-v1.1.json: SQuAD (version 1.1): 12 questions" in said
    assert set(outcome.evaluations[0].metrics) == {"exact_match", "f1"}


def test_squad_v2_json_tunes_its_no_answer_threshold_and_keeps_it(tmp_path: Path) -> None:
    squad_v2_file(tmp_path)
    table = 'no_answer = true\n[tasks.qa.data]\ndemo = ""\ntrain = "dev-v2.0.json"\nvalidation = "dev-v2.0.json"'
    outcome, said = _finetune(tmp_path, "bert-tiny-qa.toml", "qa", table)
    metrics = outcome.evaluations[0].metrics
    assert set(metrics) == {"exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"}
    threshold = _task_json(outcome)["no_answer_threshold"]
    assert f"tuned on validation: no_answer_threshold = {threshold}" in said


def _hf(tmp_path: Path) -> Any:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC"])),
                                  "sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    rows: dict[str, list[Any]] = {"tokens": [], "ner_tags": [], "sentence": [], "label": []}
    for k in range(20):
        rows["tokens"].append(["Peter", "Blackburn", "visits", "EU"] if k % 2 else ["Brussels", "is", "big"])
        rows["ner_tags"].append([1, 2, 0, 3] if k % 2 else [5, 0, 0])
        rows["sentence"].append(f"{'great' if k % 2 else 'awful'} film {k}")
        rows["label"].append(k % 2)
    return datasets.Dataset.from_dict(rows, features=features)


def test_parquet_tagging_with_the_dataset_label_names(tmp_path: Path) -> None:
    _hf(tmp_path).to_parquet(str(tmp_path / "train-00000-of-00001.parquet"))
    table = f'labels = {NER_LABELS}\n[tasks.ner.data]\ndemo = ""\ntrain = "train-00000-of-00001.parquet"\ntags = "ner_tags"'
    outcome, said = _finetune(tmp_path, "bert-tiny-ner.toml", "ner", table)
    assert any("label ids of ner_tags, label read as the dataset's own label names" in s for s in said)
    assert outcome.evaluations[0].examples == 2


def test_a_datasets_folder_classification(tmp_path: Path) -> None:
    _hf(tmp_path).save_to_disk(str(tmp_path / "sst2-train"))
    table = '[tasks.sentiment.data]\ndemo = ""\ntrain = "sst2-train"\ntext = "sentence"'
    outcome, said = _finetune(tmp_path, "bert-tiny-sentiment.toml", "sentiment", table)
    assert _task_json(outcome)["labels"] == ["neg", "pos"] and outcome.evaluations[0].examples == 2
    assert f"data: {tmp_path}/sst2-train: datasets folder, 20 rows" in said
