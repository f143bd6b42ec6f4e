"""`specc export-hf` of fine-tuned runs (a few steps on the built-in demos, at toy size): `transformers.pipeline`
on the exported folder predicts what `specc predict` does (labels and probabilities, tags, answers), translation
runs export as their LM class with equal logits and the same greedy output, a LoRA run exports merged, and a
head no class computes is refused in one line that names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import SPECS
from specc.cli import main
from specc.runtime.data.labelled import read_records
from specc.runtime.train.finetune import finetune, load_task_run, predict
from test_lora import CASES, SMALL, _data, _lora, _sets

transformers = pytest.importorskip("transformers")

# The sentiment demo with BertForSequenceClassification's head: the tanh pooler of [CLS], then a linear classifier.
POOLED = """format = 1
extends = "specc:bert-tiny"
name = "bert-tiny-pooled-sentiment"

[model.outputs]
sentiment_logits = "sentiment_head"

[model.nodes]
sentiment_head = { op = "classification_head", in = "pooler", d_model = "d_model", num_labels = 2, dropout = 0.1 }

[tasks.sentiment]
type = "classification"
head = "sentiment_logits"
max_len = 64

[tasks.sentiment.data]
demo = "sentiment"
"""


RUNS = {**CASES, "translation (bart)": ("bart-tiny-translate.toml", "translate", "translation", [], [],
                                        [*SMALL, "params.d_ff=64", "tasks.translate.beam=1", "tasks.translate.max_new_tokens=6"])}
LM_CLASS = {"translation (encoder-decoder)": "T5ForConditionalGeneration", "translation (bart)": "BartForConditionalGeneration",
            "translation (decoder-only)": "GPT2LMHeadModel"}


def _finetune(tmp_path: Path, case: str, steps: int = 4, spec: Path | None = None, sets: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A run of `case` (RUNS) trained `steps` steps from random init; its run folder and validation file."""
    name, task, demo, _, _, extra = RUNS[case]
    train, val = _data(tmp_path, demo)
    run = tmp_path / "run"
    finetune(str(spec or SPECS / name), None, str(run), task, [*_sets(task, train, val, extra, steps), *sets], quiet=True,
             say=lambda s: None)
    return run, val


def _export(run: Path, out: Path) -> None:
    assert main(["export-hf", str(run), "-o", str(out)]) == 0


def _predict(run: Path, data: Path) -> list[dict]:
    lines: list[str] = []
    predict(str(run), str(data), quiet=True, say=lines.append)
    return [json.loads(line) for line in lines]


def test_sequence_classification_pipeline_matches_specc_predict(tmp_path: Path) -> None:
    spec = tmp_path / "pooled.toml"
    spec.write_text(POOLED)
    run, val = _finetune(tmp_path, "classification", 8, spec)
    _export(run, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["problem_type"] == "single_label_classification"
    ours = _predict(run, val)
    pipe = transformers.pipeline("text-classification", model=str(tmp_path / "hf"))
    theirs = pipe([p["text"] for p in ours], top_k=None)
    for mine, other in zip(ours, theirs, strict=True):
        assert mine["label"] == max(other, key=lambda x: x["score"])["label"]
        assert {x["label"]: x["score"] for x in other} == pytest.approx(mine["probs"], abs=2e-6)


def test_token_classification_pipeline_matches_specc_predict(tmp_path: Path) -> None:
    run, val = _finetune(tmp_path, "token_classification", 6)
    _export(run, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert list(config["id2label"].values()) == ["O", "B-MOD", "B-FUNC", "B-EXC", "B-CHAR", "I-CHAR"]
    ours = _predict(run, val)
    pipe = transformers.pipeline("token-classification", model=str(tmp_path / "hf"), ignore_labels=[])
    for mine in ours:
        text = " ".join(mine["tokens"])
        starts = [sum(len(w) + 1 for w in mine["tokens"][:i]) for i in range(len(mine["tokens"]))]
        first = {e["start"]: e["entity"] for e in pipe(text) if e["start"] in starts}  # a word's first sub-token
        assert [first[s] for s in starts] == mine["tags"], text


def test_question_answering_pipeline_matches_specc_predict(tmp_path: Path) -> None:
    run, val = _finetune(tmp_path, "extractive_qa", 6, sets=("tasks.qa.max_len=128", "tasks.qa.max_query_len=64"))  # most fit one window, uncut
    _export(run, tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["BertForQuestionAnswering"]
    ours = _predict(run, val)
    loaded = load_task_run(run, "cpu")
    records = read_records(val, "auto")
    feats = loaded.runner.encode(records, gold=False)
    inputs = loaded.runner.collate(feats, gold=False).inputs
    hf = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        mine = loaded.model(**inputs)[loaded.setup.task.params.head]
        out = hf(input_ids=inputs["tokens"], attention_mask=inputs["attention_mask"], token_type_ids=inputs["segments"])
    real = inputs["attention_mask"].bool()
    assert torch.allclose(mine[real], torch.stack([out.start_logits, out.end_logits], -1)[real], atol=1e-5)
    # transformers 5 has no question-answering pipeline: its tokenizer frames the pair as specc does, and the best
    # span of the exported model's logits (start <= end, in the context, at most max_answer_len tokens) is specc's answer
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    compared, limit = 0, loaded.setup.task.params.max_answer_len
    for i, pred in enumerate(ours):
        enc = tok(pred["question"], pred["context"], return_offsets_mapping=True)
        windows = [f for f in feats if f.example == i]
        if len(windows) != 1:  # a context longer than one window: specc's own windows, not compared here
            continue
        assert enc["input_ids"] == windows[0].inputs["tokens"] and enc["token_type_ids"] == windows[0].inputs["segments"]
        with torch.no_grad():
            out = hf(**{k: torch.tensor([v]) for k, v in enc.items() if k != "offset_mapping"})
        context = [i for i, seq in enumerate(enc.sequence_ids()) if seq == 1]
        start, end = out.start_logits[0], out.end_logits[0]
        s, e = max(((a, b) for a in context for b in context if a <= b < a + limit), key=lambda ab: float(start[ab[0]] + end[ab[1]]))
        offsets = enc["offset_mapping"]
        assert pred["context"][offsets[s][0]:offsets[e][1]] == pred["answer"], pred["question"]
        compared += 1
    assert compared


@pytest.mark.parametrize("case", list(LM_CLASS))
def test_translation_exports_as_its_lm(case: str, tmp_path: Path) -> None:
    run, val = _finetune(tmp_path, case, 6)
    _export(run, tmp_path / "hf")
    encdec = case != "translation (decoder-only)"
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == [LM_CLASS[case]]
    loaded = load_task_run(run, "cpu")
    records = read_records(val, "auto")
    feats = loaded.runner.encode(records, gold=True)
    inputs = loaded.runner.collate(feats, gold=False).inputs
    auto = transformers.AutoModelForSeq2SeqLM if encdec else transformers.AutoModelForCausalLM
    hf = auto.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        mine = loaded.model(**inputs)["logits"]
        if encdec:
            theirs = hf(input_ids=inputs["src"], attention_mask=inputs.get("src_mask"), decoder_input_ids=inputs["tgt"],
                        decoder_attention_mask=inputs.get("tgt_mask")).logits
            real = inputs["tgt_mask"].bool() if "tgt_mask" in inputs else torch.ones(inputs["tgt"].shape, dtype=torch.bool)
        else:
            theirs = hf(input_ids=inputs["tokens"], attention_mask=inputs.get("attention_mask")).logits
            real = inputs["attention_mask"].bool() if "attention_mask" in inputs else torch.ones(inputs["tokens"].shape, dtype=torch.bool)
    assert torch.allclose(mine[real], theirs[real], atol=1e-4), (mine[real] - theirs[real]).abs().max()
    if encdec:  # greedy decoding from the exported config (decoder start, end token) gives specc's translation
        ours = _predict(run, val)
        params, eos = loaded.setup.task.params, config["eos_token_id"]
        for feat, pred in zip(loaded.runner.encode(records, gold=False), ours, strict=True):
            ids = hf.generate(torch.tensor([feat.inputs["src"]]), max_new_tokens=params.max_new_tokens, do_sample=False,
                              num_beams=1)[0].tolist()[1:]  # after the decoder's start token
            ids = ids[: ids.index(eos)] if eos in ids else ids
            assert loaded.runner.tok.decode(ids) == pred["translation"]  # the same ids, decoded as specc decodes


def test_lora_run_exports_merged(tmp_path: Path) -> None:
    spec = tmp_path / "pooled.toml"
    spec.write_text(POOLED)
    base, val = _finetune(tmp_path, "classification", 2, spec)
    train = tmp_path / "train.jsonl"
    sets = _sets("sentiment", train, val, CASES["classification"][5], 3, base=False)
    finetune(str(spec), str(base), str(tmp_path / "lora"), "sentiment",
             sets + _lora(["layer.*.attention.qkv", "layer.*.ffn.*"], ["sentiment_head.*"]), quiet=True, say=lambda s: None)
    _export(tmp_path / "lora", tmp_path / "hf")
    loaded = load_task_run(tmp_path / "lora", "cpu")  # adapters unmerged
    feats = loaded.runner.encode(read_records(val, "auto"), gold=False)
    inputs = loaded.runner.collate(feats, gold=False).inputs
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        mine = loaded.model.eval()(**inputs)["sentiment_logits"]
        theirs = hf(input_ids=inputs["tokens"], attention_mask=inputs["attention_mask"], token_type_ids=inputs["segments"]).logits
    assert torch.allclose(mine, theirs, atol=1e-5)


def test_the_demo_mean_pool_head_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = _finetune(tmp_path, "classification", 2)
    assert main(["export-hf", str(run), "-o", str(tmp_path / "hf")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert "head node 'sentiment_head' cannot be exported as BertForSequenceClassification" in err
    assert "pool (mode mean, masked)" in err
    assert not (tmp_path / "hf").exists()
