"""Hostile and damaged model files on every load path: refused with a clean error, never executed.

A pickle whose `__reduce__` runs `touch MARKER` is planted where each command
reads files: a run's `optimizer.pt` / `rng.pt` (`train --resume`,
`finetune --resume`), its `model.safetensors` (`eval`, `generate`,
`export-hf`, `finetune --from`, `warm-start`, `diff`, `train --resume`), and a
Hugging Face folder's `pytorch_model.bin` (`import-hf`), both as a
`torch.save` archive and as a bare (legacy) pickle. Every command ends with
exit status 0 (it never needed the file) or 1 and a message, no traceback, and
the marker never appears. Safetensors files with broken headers (offsets past
the end, reversed or negative, shapes larger than their data, unknown dtypes,
header lengths past the end, truncation) are clean errors on every path that
reads weights. A source scan checks that nothing in specc/ or runtime/ can
unpickle code.
"""

from __future__ import annotations

import ast
import pickle
import shutil
from pathlib import Path
from typing import Callable

import pytest

from reltools import SAFETENSORS_DAMAGE, assert_clean_error, pickle_payload, run_main, torch_payload
from runtools import GPT_TINY, SPECS, sets

Record = Callable[..., None]
GPT_SETS = sets("train.steps=4", "train.save_every=2", "train.eval_every=2", "train.log_every=2")[1::2]
BERT_TINY, SENTIMENT = str(SPECS / "bert-tiny.toml"), str(SPECS / "bert-tiny-sentiment.toml")
BERT_SETS = ["params.layers=1", "params.d_model=32", "params.heads=2", "tokenizer.vocab_size=512", "data.max_documents=24",
             "train.steps=2", "train.batch_size=4", "train.seq_len=32", "train.warmup=1", "train.save_every=2",
             "train.eval_every=2", "train.eval_batches=1"]
DATA = Path(__file__).resolve().parent / "data"  # a few labelled reviews (the demo set is 3,000)
TASK_SETS = BERT_SETS[:3] + ["tasks.sentiment.train.steps=2", "tasks.sentiment.train.batch_size=4",
                             "tasks.sentiment.train.eval_every=2", "tasks.sentiment.train.save_every=2",
                             "tasks.sentiment.train.warmup=1", "tasks.sentiment.max_len=32", 'tasks.sentiment.data.demo=""',
                             f'tasks.sentiment.data.train="{DATA / "reviews.jsonl"}"',
                             f'tasks.sentiment.data.validation="{DATA / "reviews.jsonl"}"']


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny GPT run, a tiny BERT run, a sentiment fine-tune of it, and the GPT run exported for Hugging Face."""
    from specc.runtime.train.finetune import finetune
    from specc.runtime.train.jobs import train
    from specc.cli import main

    tmp = tmp_path_factory.mktemp("hostile-sources")
    train(GPT_TINY, str(tmp / "gpt"), None, GPT_SETS, quiet=True, say=_quiet)
    train(BERT_TINY, str(tmp / "bert"), None, BERT_SETS, quiet=True, say=_quiet)
    finetune(SENTIMENT, str(tmp / "bert"), str(tmp / "sentiment"), "sentiment", TASK_SETS, quiet=True, say=_quiet)
    assert main(["export-hf", str(tmp / "gpt"), "-o", str(tmp / "hf")]) == 0
    return {"gpt": tmp / "gpt", "bert": tmp / "bert", "sentiment": tmp / "sentiment", "hf": tmp / "hf"}


def _copy(runs: dict[str, Path], tmp: Path) -> dict[str, Path]:
    for name, run in runs.items():
        shutil.copytree(run, tmp / name)
    return {name: tmp / name for name in runs}


def _latest(run: Path) -> Path:
    from specc.runtime.runs import checkpoint

    found = checkpoint.latest(run)
    assert found is not None
    return found


# command name → (argv given the copied runs and a scratch folder, the run whose files it reads)
COMMANDS: dict[str, tuple[Callable[[dict[str, Path], Path], list[str]], str]] = {
    "train --resume": (lambda r, t: ["train", GPT_TINY, "--resume", str(r["gpt"]), "--quiet", *sets("train.steps=6")], "gpt"),
    "finetune --resume": (lambda r, t: ["finetune", SENTIMENT, "--resume", str(r["sentiment"]), "--quiet",
                                        *[a for s in TASK_SETS for a in ("--set", s)], "--set", "tasks.sentiment.train.steps=4"],
                          "sentiment"),
    "eval": (lambda r, t: ["eval", str(r["gpt"])], "gpt"),
    "generate": (lambda r, t: ["generate", str(r["gpt"]), "--prompt", "The", "--max-new-tokens", "3"], "gpt"),
    "export-hf": (lambda r, t: ["export-hf", str(r["gpt"]), "-o", str(t / "exported")], "gpt"),
    "finetune --from": (lambda r, t: ["finetune", SENTIMENT, "--from", str(r["bert"]), "--out", str(t / "ft"), "--quiet",
                                      *[a for s in TASK_SETS for a in ("--set", s)]], "bert"),
    "warm-start": (lambda r, t: ["warm-start", str(r["gpt"]), GPT_TINY, "--out", str(t / "warm"),
                                 *sets("params.layers=2")], "gpt"),
    "diff": (lambda r, t: ["diff", GPT_TINY, str(r["gpt"])], "gpt"),
    "eval (fine-tuned)": (lambda r, t: ["eval", str(r["sentiment"])], "sentiment"),
    "predict": (lambda r, t: ["predict", str(r["sentiment"]), "--input", str(_reviews(t)), "--output", str(t / "p.jsonl")],
                "sentiment"),
}


def _reviews(folder: Path) -> Path:
    path = folder / "reviews.txt"
    path.write_text("a fine film\nterrible acting\n")
    return path
READS_TRAINING_STATE = {"train --resume", "finetune --resume"}


@pytest.mark.parametrize("form", ["torch.save", "bare pickle"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_pickle_payload_in_training_state_is_never_run(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                                       tmp_path: Path, tally: Record, command: str, form: str) -> None:
    """optimizer.pt and rng.pt carry the payload: resumes refuse them; other commands never unpickle them."""
    copied, marker = _copy(runs, tmp_path), tmp_path / "MARKER"
    argv, reads = COMMANDS[command]
    ckpt = _latest(copied[reads])
    plant = torch_payload if form == "torch.save" else pickle_payload
    for name in ("optimizer.pt", "rng.pt"):
        plant(ckpt / name, marker)
    done = run_main(capsys, *argv(copied, tmp_path))
    if command in READS_TRAINING_STATE:
        assert_clean_error(done, f"cannot load training state from {ckpt}")
    else:
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
    assert not marker.exists(), f"{command} ran the pickled code"
    _count(tally, "pickle payloads", refused=int(command in READS_TRAINING_STATE), never_read=int(command not in READS_TRAINING_STATE))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_pickle_in_place_of_the_weights_is_refused(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                                   tmp_path: Path, tally: Record, command: str) -> None:
    copied, marker = _copy(runs, tmp_path), tmp_path / "MARKER"
    argv, reads = COMMANDS[command]
    ckpt = _latest(copied[reads])
    for name in ("model.safetensors", "optimizer.pt", "rng.pt"):
        torch_payload(ckpt / name, marker)
    done = run_main(capsys, *argv(copied, tmp_path))
    assert_clean_error(done, str(ckpt / "model.safetensors"))
    assert not marker.exists(), f"{command} ran the pickled code"
    _count(tally, "pickle payloads", refused=1)


@pytest.mark.parametrize("form", ["torch.save", "bare pickle"])
def test_import_hf_refuses_a_pickle_payload_bin(capsys: pytest.CaptureFixture[str], runs: dict[str, Path], tmp_path: Path,
                                                tally: Record, form: str) -> None:
    folder, marker = _copy(runs, tmp_path)["hf"], tmp_path / "MARKER"
    (folder / "model.safetensors").unlink()
    (torch_payload if form == "torch.save" else pickle_payload)(folder / "pytorch_model.bin", marker)
    done = run_main(capsys, "import-hf", str(folder), "-o", str(tmp_path / "imported.toml"))
    assert_clean_error(done, f"{folder / 'pytorch_model.bin'}: cannot load with weights_only=True")
    assert not marker.exists() and not (tmp_path / "imported.toml").exists()
    _count(tally, "pickle payloads", refused=1)


def test_the_payload_is_live(tmp_path: Path) -> None:
    """The marker mechanism works: plain `pickle.load` of the planted file does run the code (so its absence above means
    the loaders refused it)."""
    marker = tmp_path / "MARKER"
    pickle_payload(tmp_path / "payload.bin", marker)
    pickle.loads((tmp_path / "payload.bin").read_bytes())
    assert marker.exists()


# -- damaged safetensors ------------------------------------------------------------------------------
WEIGHT_READERS = {k: v for k, v in COMMANDS.items() if k in {"train --resume", "eval", "finetune --from", "warm-start", "diff"}}


@pytest.mark.parametrize("damage", sorted(SAFETENSORS_DAMAGE))
def test_damaged_safetensors_are_clean_errors_on_every_path(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                                            tmp_path: Path, tally: Record, damage: str) -> None:
    copied = _copy(runs, tmp_path)
    for command, (argv, reads) in WEIGHT_READERS.items():
        weights = _latest(copied[reads]) / "model.safetensors"
        good = weights.read_bytes()
        weights.write_bytes(SAFETENSORS_DAMAGE[damage](good))
        assert_clean_error(run_main(capsys, *argv(copied, tmp_path)), str(weights))
        weights.write_bytes(good)
    hf = copied["hf"] / "model.safetensors"
    hf.write_bytes(SAFETENSORS_DAMAGE[damage](hf.read_bytes()))
    assert_clean_error(run_main(capsys, "import-hf", str(copied["hf"]), "-o", str(tmp_path / "imported.toml")), str(hf))
    _count(tally, "damaged safetensors", clean_errors=len(WEIGHT_READERS) + 1)


def _count(tally: Record, name: str, **add: int) -> None:
    totals = _TOTALS.setdefault(name, {})
    for key, n in add.items():
        totals[key] = totals.get(key, 0) + n
    tally(name, **totals, marker_files=0)


_TOTALS: dict[str, dict[str, int]] = {}


# -- the source scan ----------------------------------------------------------------------------------
def test_no_loader_in_specc_or_runtime_can_unpickle_code() -> None:
    """torch.load only with weights_only=True, and no pickle/marshal/shelve/dill/joblib at all, in specc/ and runtime/."""
    bad = []
    for path in sorted((SPECS.parent / "specc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(SPECS.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{where}: imports {n}" for n in names
                        if n.split(".")[0] in {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "torch":
                    safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords)
                    bad += [] if safe else [f"{where}: torch.load without weights_only=True"]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"eval", "exec"}:
                bad.append(f"{where}: calls {node.func.id}()")
    assert not bad, "\n".join(bad)


# -- damaged checkpoint metadata ----------------------------------------------------------------------
METADATA_DAMAGE: dict[str, Callable[[str], str]] = {
    "not JSON": lambda text: text[: len(text) // 2],
    "a list": lambda text: "[]",
    "wrong types": lambda text: '{"step": "many", "samples": null, "format": [], "model": 7, "task": 3, "labels": 1}',
}
METADATA = [(name, damage) for name in ("state.json", "spec.json", "tokenizer.json", "task.json") for damage in METADATA_DAMAGE]
METADATA += [("lineage.json", "not JSON")]


@pytest.mark.parametrize("name, damage", METADATA)
def test_damaged_checkpoint_metadata_is_never_a_traceback(capsys: pytest.CaptureFixture[str], runs: dict[str, Path],
                                                          tmp_path: Path, tally: Record, name: str, damage: str) -> None:
    copied = _copy(runs, tmp_path)
    outcomes = []
    for command, (argv, reads) in COMMANDS.items():
        file = _latest(copied[reads]) / name
        if not file.exists():
            continue
        good = file.read_text()
        file.write_text(METADATA_DAMAGE[damage](good))
        done = run_main(capsys, *argv(copied, tmp_path))
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, (command, name, damage, done.stderr[-3000:])
        if done.returncode == 1:
            assert str(file.parent) in done.stderr or name in done.stderr, (command, done.stderr)
        outcomes.append(done.returncode)
        file.write_text(good)
        for made in ("exported", "ft", "warm", "p.jsonl"):
            shutil.rmtree(tmp_path / made, ignore_errors=True)
            (tmp_path / made).unlink(missing_ok=True)
    _count(tally, "damaged checkpoint metadata", clean_errors=outcomes.count(1), unaffected=outcomes.count(0))
