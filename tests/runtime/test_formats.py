"""Format readers on fixtures written here in each format's published layout: what every reader yields,
where a bad record is reported, and that nothing is passed over without a note saying so."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import sys
from pathlib import Path
from typing import Any

import pytest

from specc.runtime.errors import UserError
from specc.runtime.data.formats import ReadOptions, format_of, parallel, read_table

CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""

CONLLU = """# sent_id = 1
# text = Don't go home.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
4\thome\thome\tADV\tRB\t_\t3\tadvmod\t_\tSpaceAfter=No
5\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_

"""


def test_conll2003_as_published(tmp_path: Path) -> None:
    path = tmp_path / "eng.train"
    path.write_text(CONLL2003)
    assert format_of(path) == "conll" and format_of(tmp_path / "x.conll") == "conll"
    table = read_table(path)
    assert [r.fields["tokens"] for r in table.records] == [["EU", "rejects", "German", "call", "."],
                                                           ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert table.records[0].fields["tags"] == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert table.records[0].fields["chunk"] == ["B-NP", "B-VP", "B-NP", "I-NP", "O"]
    assert [r.where for r in table.records] == [f"{path}:3", f"{path}:9", f"{path}:14"]
    assert f"{path}: 2 -DOCSTART- lines (document boundaries) skipped" in table.notes


def test_conll_columns_can_be_named_and_a_ragged_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "chunks.conll"
    path.write_text("He PRP B-NP\nruns VBZ B-VP\n\nShe PRP\n")
    with pytest.raises(UserError, match=rf"{path}:4: 2 columns, but 3 are named"):
        read_table(path, "conll", ReadOptions(columns=("words", "pos", "chunk")))
    path.write_text("He PRP B-NP\nruns VBZ\n")
    with pytest.raises(UserError, match=rf"{path}:2: 2 columns, but the sentence's first line \(line 1\) has 3"):
        read_table(path)
    path.write_text("He PRP B-NP\n\n")
    table = read_table(path, "conll", ReadOptions(columns=("words", "pos", "chunk")))
    assert table.records[0].fields == {"words": ["He"], "pos": ["PRP"], "chunk": ["B-NP"]}


def test_conllu_words_skip_ranges_and_keep_comments(tmp_path: Path) -> None:
    path = tmp_path / "en_ewt-ud-train.conllu"
    path.write_text(CONLLU)
    table = read_table(path)
    first, second = table.records
    assert first.fields["tokens"] == ["Do", "n't", "go", "home", "."]
    assert first.fields["upos"] == ["AUX", "PART", "VERB", "ADV", "PUNCT"]
    assert first.fields["text"] == "Don't go home." and second.fields["sent_id"] == "2"
    assert first.where == f"{path}:4" and second.where == f"{path}:11"
    assert any("1 multi-word token range" in n for n in table.notes)
    path.write_text("1\tDo\tdo\n")
    with pytest.raises(UserError, match=rf"{path}:1: CoNLL-U lines have 10 tab-separated columns, this one 3"):
        read_table(path)


def test_a_headerless_tsv_is_never_read_with_its_first_example_as_the_header(tmp_path: Path) -> None:
    """CoLA's in_domain_train.tsv: source, label, original judgement, sentence; no header row."""
    path = tmp_path / "in_domain_train.tsv"
    path.write_text("gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n"
                    "gj04\t0\t*\tOne more pseudo generalization and I'm giving up.\n")
    with pytest.raises(UserError) as err:
        read_table(path, "auto", ReadOptions(needs=("sentence", "label")))
    assert str(err.value).startswith(f"{path}:1: the first row ('gj04', '1', '', ")
    assert "if the file has no header row, declare data.columns = [...]" in str(err.value)
    table = read_table(path, "auto", ReadOptions(columns=("source", "label", "judgement", "sentence"), needs=("sentence", "label")))
    assert len(table.records) == 2 and table.records[0].fields["label"] == "1" and table.records[0].where == f"{path}:1"
    assert table.notes == [f"{path}: no header row; columns as declared: source, label, judgement, sentence"]


def test_a_header_row_is_said_and_a_declared_width_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text('sentence,label\n"good, really",1\n')
    table = read_table(path, "auto", ReadOptions(needs=("sentence", "label")))
    assert table.records[0].fields == {"sentence": "good, really", "label": "1"} and table.records[0].where == f"{path}:2"
    assert table.notes[0].startswith(f"{path}:1: first row read as the header: sentence, label")
    with pytest.raises(UserError, match=rf"{path}:1: 2 columns, but the declared columns names 3"):
        read_table(path, "auto", ReadOptions(columns=("a", "b", "c")))


def test_parallel_files_pair_line_by_line_and_must_have_equal_lengths(tmp_path: Path) -> None:
    en, de = tmp_path / "train.en", tmp_path / "train.de"
    en.write_text("Resumption of the session\n\nI declare resumed the session.\n")
    de.write_text("Wiederaufnahme der Sitzungsperiode\n\nIch erkläre die Sitzung für wiederaufgenommen.\n")
    table = parallel(en, de, "src", "tgt")
    assert [r.fields for r in table.records] == [
        {"src": "Resumption of the session", "tgt": "Wiederaufnahme der Sitzungsperiode"},
        {"src": "I declare resumed the session.", "tgt": "Ich erkläre die Sitzung für wiederaufgenommen."}]
    assert table.records[1].where == f"{en}:3" and any("1 line blank on both sides passed over" in n for n in table.notes)
    de.write_text("Wiederaufnahme der Sitzungsperiode\n")
    with pytest.raises(UserError, match=rf"{de} has 1 lines but {en} has 3: parallel files must have the same number"):
        parallel(en, de, "src", "tgt")
    de.write_text("Eins\nZwei\nDrei\n")
    with pytest.raises(UserError, match=rf"{en}:2: blank line, but line 2 of {de} is not"):
        parallel(en, de, "src", "tgt")


def squad_v2() -> dict[str, Any]:
    context = "Normandy is a region in France. The Normans gave their name to it in the 10th century."
    return {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [{"context": context, "qas": [
        {"id": "q1", "question": "In what country is Normandy?", "is_impossible": False,
         "answers": [{"text": "France", "answer_start": 24}, {"text": "France.", "answer_start": 24}]},
        {"id": "q2", "question": "Who gave their name to France?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "The Normans", "answer_start": 32}]},
    ]}]}]}


def test_squad_v2_marks_unanswerable_questions(tmp_path: Path) -> None:
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(squad_v2()))
    table = read_table(path)
    q1, q2 = table.records
    assert q1.fields["is_impossible"] is False and q1.fields["answers"][0]["text"] == "France"
    assert q2.fields["is_impossible"] is True and q2.fields["answers"] == [] and q2.fields["title"] == "Normans"
    assert q2.where == f"{path}: data[0].paragraphs[0].qas[1]"
    assert table.notes == [f"{path}: SQuAD (version v2.0): 2 questions, 1 of them unanswerable"]


def test_jsonl_as_datasets_exports_it_reads_nested_fields(tmp_path: Path) -> None:
    path = tmp_path / "wmt.jsonl"
    path.write_text('{"translation": {"de": "Hallo", "en": "Hello"}}\n'
                    '{"answers": {"text": ["France"], "answer_start": [24]}}\n')
    first, second = read_table(path).records
    assert first.get("translation.en") == "Hello" and second.get("answers.text") == ["France"]
    with pytest.raises(UserError, match=rf"{path}:1: missing field 'translation.fr' \(fields here inside 'translation': de, en\)"):
        first.get("translation.fr")


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_compressed_files_read_as_their_inner_format(tmp_path: Path, suffix: str, opener: Any) -> None:
    path = tmp_path / f"train.jsonl{suffix}"
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write('{"text": "one"}\n{"text": "two"}\n')
    assert format_of(path) == "jsonl"
    assert [r.fields["text"] for r in read_table(path).records] == ["one", "two"]
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(UserError, match=rf"{path}: cannot decompress"):
        read_table(path)


def test_zstd_reads_through_the_data_extra_and_names_it_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "train.conll.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\n"))
    assert read_table(path).records[0].fields["tags"] == ["B-PER"]
    _without(monkeypatch, "zstandard")
    with pytest.raises(UserError, match=rf"{path}: a .zst file needs the 'zstandard' library, which is not installed; "
                                        r"install it with pip install 'specc\[data\]'"):
        read_table(path)


def _without(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """`name` (and its submodules) as if not installed: a None entry in sys.modules makes the import fail."""
    for mod in [m for m in list(sys.modules) if m.startswith(name + ".")] + [name, name + ".parquet"]:
        monkeypatch.setitem(sys.modules, mod, None)  # type: ignore[arg-type]


def _hf_dataset() -> Any:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"])),
        "label": datasets.ClassLabel(names=["negative", "positive"]),
        "translation": datasets.Translation(languages=["de", "en"]),
    })
    return datasets.Dataset.from_dict({"tokens": [["Peter", "runs"], ["It", "works"]], "ner_tags": [[1, 0], [0, 0]],
                                       "label": [1, 0], "translation": [{"en": "Hi", "de": "Hallo"}] * 2}, features=features)


def test_parquet_and_a_datasets_folder_name_label_ids_from_the_dataset_features(tmp_path: Path) -> None:
    ds = _hf_dataset()
    ds.to_parquet(str(tmp_path / "train.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "train.parquet", tmp_path / "saved"):
        table = read_table(path)
        first = table.records[0]
        assert first.fields["ner_tags"] == ["B-PER", "O"] and first.fields["label"] == "positive"
        assert first.get("translation.de") == "Hallo" and first.where == f"{path}: row 0"
        assert any("label ids of ner_tags, label read as the dataset's own label names" in n for n in table.notes)


def test_a_datasets_dict_folder_names_its_splits(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = _hf_dataset()
    datasets.DatasetDict({"train": ds, "validation": ds}).save_to_disk(str(tmp_path / "glue"))
    with pytest.raises(UserError, match=r"a datasets folder of several splits \(train, validation\); point each"):
        read_table(tmp_path / "glue")
    assert len(read_table(tmp_path / "glue" / "validation").records) == 2


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1")
    _without(monkeypatch, "pyarrow")
    with pytest.raises(UserError, match=rf"{path}: reading Parquet needs the 'pyarrow' library, which is not installed; "
                                        r"install it with pip install 'specc\[data\]'"):
        read_table(path)
