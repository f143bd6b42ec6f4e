"""Task data: readers and their errors, input encoding, label alignment, QA windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY, records, runner, tokenizer
from specc.runtime.errors import UserError
from specc.runtime.data.labelled import read_records
from specc.runtime.tasks.qa import best_span, window_starts


# -- readers ---------------------------------------------------------------------------------
def test_jsonl_records_know_their_line(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n')
    rows = read_records(f)
    assert [r.fields["text"] for r in rows] == ["a", "b"] and rows[1].where == f"{f}:3"
    with pytest.raises(UserError, match=r"d.jsonl:3: missing field 'sentence' \(fields here: label, text\)"):
        rows[1].get("sentence")
    with pytest.raises(UserError, match=r"field 'label' must be a string"):
        rows[1].get("label", str)


@pytest.mark.parametrize("text, message", [
    ('{"text": "a"}\n{"text": \n', r"d.jsonl:2:10: invalid JSON"),
    ('{"text": "a"}\n[1, 2]\n', r"d.jsonl:2: each line must be a JSON object, got list"),
])
def test_bad_jsonl_is_reported_at_its_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(text)
    with pytest.raises(UserError, match=message):
        read_records(f)


def test_csv_and_glue_style_tsv(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text('sentence,label\n"hello, world",pos\n\nbye,neg\n')
    rows = read_records(f)
    assert [(r.fields["sentence"], r.where) for r in rows] == [("hello, world", f"{f}:2"), ("bye", f"{f}:4")]
    t = tmp_path / "d.tsv"
    t.write_text('sentence\tlabel\nit "quotes" freely\t1\n')  # GLUE TSVs are not quoted
    assert read_records(t)[0].fields == {"sentence": 'it "quotes" freely', "label": "1"}
    t.write_text("sentence\tlabel\nno label here\n")
    with pytest.raises(UserError, match=r"d.tsv:2: 1 columns, but the header names 2"):
        read_records(t)


def test_squad_json_gives_one_record_per_question(tmp_path: Path) -> None:
    f = tmp_path / "train.json"
    para = {"context": "Paris is in France.", "qas": [{"id": "q1", "question": "Where is Paris?",
                                                         "answers": [{"text": "France", "answer_start": 12}]}]}
    f.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [para]}]}))
    (r,) = read_records(f)
    assert r.fields["question"] == "Where is Paris?" and r.fields["context"] == "Paris is in France."
    assert r.where == f"{f}: data[0].paragraphs[0].qas[0]"
    f.write_text(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}))
    with pytest.raises(UserError, match=r"data\[0\].paragraphs\[0\]: missing field 'context'"):
        read_records(f)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data file not found: .*nope.jsonl"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "d.xml").write_text("<x/>")
    with pytest.raises(UserError, match="cannot tell the data format"):
        read_records(tmp_path / "d.xml")


# -- sequence classification ------------------------------------------------------------------
def test_pairs_are_cls_a_sep_b_sep_with_segments_and_longest_first_truncation() -> None:
    tok = tokenizer()
    labels = ["both_negative", "both_positive", "mixed"]
    r = runner("bert-tiny-tasks.toml", "pairs", labels=labels)
    a, b = "return the value", "open the file and return a stream"
    (f,) = r.encode(records({"first": a, "second": b, "label": "both_negative"}), gold=True)
    s = tok.specials
    ids_a, ids_b = tok.encode(a), tok.encode(b)
    assert f.inputs["tokens"] == [s.cls] + ids_a + [s.sep] + ids_b + [s.sep]
    assert f.inputs["segments"] == [0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1)
    assert f.target == 0
    long = " ".join(["return the value"] * 40)
    (g,) = runner("bert-tiny-tasks.toml", "pairs", sets=["params.layers=1", "tasks.pairs.max_len=20"],
                  labels=labels).encode(records({"first": "open", "second": long, "label": "mixed"}), True)
    assert len(g.inputs["tokens"]) == 20 and g.inputs["tokens"][:3] == [s.cls, tok.encode("open")[0], s.sep]


def test_labels_are_inferred_sorted_and_an_unknown_label_names_its_record() -> None:
    train = records({"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}, {"text": "c", "label": "pos"})
    r = runner("bert-tiny-sentiment.toml", train=train)
    assert r.labels == ["neg", "pos"]
    with pytest.raises(UserError, match=r"dev.jsonl:2: unknown label 'neutral' \(labels: neg, pos\)"):
        r.encode(records({"text": "x", "label": "pos"}, {"text": "y", "label": "neutral"}, where="dev.jsonl"), gold=True)
    with pytest.raises(UserError, match="training data has 3 labels .* head 'sentiment_logits' gives 2 scores"):
        runner("bert-tiny-sentiment.toml", train=train + records({"text": "d", "label": "neutral"}))


def test_regression_targets_must_be_numbers() -> None:
    r = runner("bert-tiny-tasks.toml", "rating")
    (f,) = r.encode(records({"text": "good", "label": "4.5"}), gold=True)
    assert f.target == 4.5
    with pytest.raises(UserError, match=r"data.jsonl:1: field 'label' must be a number, got 'high'"):
        r.encode(records({"text": "good", "label": "high"}), gold=True)


# -- token classification -----------------------------------------------------------------------
def test_the_first_sub_token_of_each_word_carries_its_tag() -> None:
    tok = tokenizer()
    labels = ["O", "B-MOD", "B-FUNC", "B-EXC", "B-CHAR", "I-CHAR"]
    r = runner("bert-tiny-ner.toml", labels=labels)
    words = ["raise", "ValueError", "from", "quickbrownfox", "now"]
    tags = ["O", "B-EXC", "O", "B-MOD", "O"]
    (f,) = r.encode(records({"tokens": words, "tags": tags}), gold=True)
    pieces = [tok.encode(w) for w in words]
    assert any(len(p) > 1 for p in pieces)  # some words are split into several sub-words
    expect = [-100]
    for p, t in zip(pieces, tags):
        expect += [labels.index(t)] + [-100] * (len(p) - 1)
    assert f.target == expect + [-100]
    assert f.inputs["tokens"] == [tok.specials.cls] + [i for p in pieces for i in p] + [tok.specials.sep]
    starts = np.cumsum([1] + [len(p) for p in pieces[:-1]])  # token index of each word's first piece
    assert f.meta == list(starts)
    # Predicting reads each word's tag off its first sub-token; words cut off by truncation are "O".
    (short,) = runner("bert-tiny-ner.toml", sets=["params.layers=1", "tasks.ner.max_len=6"], labels=labels).encode(
        records({"tokens": words, "tags": tags}), gold=True)
    assert short.meta[-1] == -1 and len(short.inputs["tokens"]) <= 6


def test_tag_errors_name_their_record() -> None:
    r = runner("bert-tiny-ner.toml", labels=["O", "B-MOD", "B-FUNC", "B-EXC", "B-CHAR", "I-CHAR"])
    with pytest.raises(UserError, match=r"data.jsonl:1: 2 words but 1 tags"):
        r.encode(records({"tokens": ["a", "b"], "tags": ["O"]}), gold=True)
    with pytest.raises(UserError, match=r"data.jsonl:1: unknown tag 'B-PER'"):
        r.encode(records({"tokens": ["a"], "tags": ["B-PER"]}), gold=True)


# -- extractive QA ------------------------------------------------------------------------------
def test_window_starts_cover_the_context_doc_stride_apart() -> None:
    assert window_starts(10, 20, 5) == [0]
    assert window_starts(50, 20, 8) == [0, 8, 16, 24, 32]  # the last window (32..51) reaches the end
    for length, room, stride in [(100, 30, 10), (31, 30, 30), (200, 64, 17)]:
        starts = window_starts(length, room, stride)
        assert starts[-1] + room >= length and all(b - a == stride for a, b in zip(starts, starts[1:]))


def test_qa_windows_map_answers_back_to_their_exact_characters() -> None:
    context = " ".join(f"Sentence {i} says that function_{i} returns value {i * 7}." for i in range(30))
    rows = []
    for i in (0, 3, 17, 29):
        text = f"function_{i}"
        rows.append({"question": f"Which function returns {i * 7}?", "context": context,
                     "answers": [{"text": text, "answer_start": context.index(text + " ")}]})
    r = runner("bert-tiny-qa.toml", sets=["params.layers=1", "tasks.qa.max_len=64", "tasks.qa.doc_stride=24",
                                           "tasks.qa.max_query_len=16"])
    features = r.encode(records(*rows), gold=True)
    for k, row in enumerate(rows):
        windows = [f for f in features if f.example == k]
        assert len(windows) > 3  # the context needs several windows
        answer = row["answers"][0]
        found = [f for f in windows if f.target != (0, 0)]
        assert found, "some window holds the whole answer"
        for f in found:
            a, b = f.target
            start, end = f.meta.offsets[a][0], f.meta.offsets[b][1]
            assert context[start:end] == answer["text"] and start == answer["answer_start"]
        for f in windows:  # a window without the answer points at [CLS]
            inside = f.meta.offsets
            covered = min(s for s, _ in inside.values()) <= answer["answer_start"] and \
                max(e for _, e in inside.values()) >= answer["answer_start"] + len(answer["text"])
            assert (f.target != (0, 0)) == covered


def test_best_span_respects_order_and_length() -> None:
    offsets = {2: (0, 5), 3: (6, 9), 4: (10, 14), 5: (15, 20)}
    start = np.array([0, 0, 1.0, 0.2, 3.0, 0.1])
    end = np.array([9, 9, 2.0, 0.1, 0.5, 2.5])
    # the best start (4) and the best end (2) would be reversed; 4..5 scores 3.0 + 2.5
    assert best_span(start, end, offsets, max_len=10, n_best=4) == (5.5, 10, 20)
    # one token at most: 2..2 scores 3.0, 3..3 0.3, 4..4 3.5, 5..5 2.6
    assert best_span(start, end, offsets, max_len=1, n_best=4) == (3.5, 10, 14)
    assert best_span(start, end, {}, 5, 4) is None  # indexes 0 and 1 ([CLS], question) are never answers


def test_qa_answers_must_sit_where_they_say() -> None:
    r = runner("bert-tiny-qa.toml")
    bad = records({"question": "q?", "context": "Paris is in France.", "answers": [{"text": "France", "answer_start": 3}]})
    with pytest.raises(UserError, match=r"data.jsonl:1: answer 0 'France' is not at character 3 of the context"):
        r.encode(bad, gold=True)
    with pytest.raises(UserError, match="needs at least one answer"):
        r.encode(records({"question": "q?", "context": "c", "answers": []}), gold=True)


# -- translation ---------------------------------------------------------------------------------
TRANSLATION = {"src": "Return the value of the object.", "tgt": "Raise the string."}


def test_an_encoder_decoder_reads_the_target_shifted_right() -> None:
    tok = tokenizer("unigram")
    s = tok.specials
    (f,) = runner("t5-tiny-translate.toml", kind="unigram", sets=["params.layers=1"]).encode(records(TRANSLATION), gold=True)
    y = tok.encode(TRANSLATION["tgt"]) + [s.eos]
    assert f.inputs == {"src": tok.encode(TRANSLATION["src"]) + [s.eos], "tgt": [s.pad] + y[:-1]} and f.target == y


def test_a_decoder_only_model_reads_prompt_separator_target_and_learns_only_the_target() -> None:
    tok = tokenizer("bpe")
    s = tok.specials
    sets = ["params.layers=1", "tasks.translate.prefix='English: '", "tasks.translate.separator=' German:'"]
    r = runner("gpt-tiny-translate.toml", kind="bpe", sets=sets)
    (f,) = r.encode(records(TRANSLATION), gold=True)
    prompt = tok.encode("English: " + TRANSLATION["src"]) + tok.encode(" German:")
    y = tok.encode(TRANSLATION["tgt"]) + [s.eos]
    assert f.inputs == {"tokens": prompt + y[:-1]}
    assert f.target == [-100] * (len(prompt) - 1) + y  # the separator's position predicts the first target token
    (g,) = r.encode(records({"src": TRANSLATION["src"]}), gold=False)
    assert g.inputs == {"tokens": prompt}
    batch = r.collate([f, r.encode(records({"src": "Open.", "tgt": "Read."}), gold=True)[0]])
    assert batch.inputs["tokens"].shape == batch.targets["labels"].shape
    # A long source is cut to max_len, and the separator stays.
    short = runner("gpt-tiny-translate.toml", kind="bpe", sets=[*sets, "tasks.translate.max_len=12"])
    (h,) = short.encode(records({"src": "Return the value " * 20}), gold=False)
    assert len(h.inputs["tokens"]) == 12 and h.inputs["tokens"][-len(tok.encode(" German:")):] == tok.encode(" German:")


def test_the_shipped_separator_is_a_newline_and_an_empty_one_adds_nothing() -> None:
    tok = tokenizer("bpe")
    for separator, want in [(None, tok.encode("Open.") + tok.encode("\n")), ("''", tok.encode("Open."))]:
        sets = ["params.layers=1"] + ([f"tasks.translate.separator={separator}"] if separator else [])
        (f,) = runner("gpt-tiny-translate.toml", kind="bpe", sets=sets).encode(records({"src": "Open."}), gold=False)
        assert f.inputs["tokens"] == want


def test_a_cut_sentence_does_not_shorten_the_next_one() -> None:
    tag = runner("bert-tiny-ner.toml", sets=[*TINY, "tasks.ner.max_len=6"])
    long = {"tokens": ["returnthevalue", "the"], "tags": ["O", "O"]}  # the first word (7 pieces) outgrows the 4-token budget
    short = {"tokens": ["the", "fox"], "tags": ["O", "O"]}
    first, second = tag.encode(records(long, short), gold=True)
    assert first.meta == [-1, -1]
    assert second.meta == [1, 2]  # both words of the next sentence kept
