"""The semantic fuzzer: specs that parse but mean nothing, through every command that reads a spec.

Inputs are the reference specs mutated by `semantic_mutate` (values per field
type, structure, duplicated keys). Each input goes through the stages of
`specc check` (parse → validate → build_graph → the runtime sections against
the architecture); one that passes is compiled (on the CPU with its
initialisation when small, else on the meta device) and hashed; a sample also
runs the `summary`, `hash`, `diff` (against its seed) and `explain` commands
in-process, and a smaller sample a 2-step `specc train` at toy size (the
pretraining seeds) or a 2-step `specc finetune` of one of its tasks (the
seeds that declare [tasks.*]; with adapters, from a toy base run). A run that
finished is then read by `eval`, `generate` (pretraining; a refusal when the
objective is no LM) or `predict` (fine-tuning, on a two-record input file),
and `export-hf` (a family that does not match is a one-line refusal).

The oracle: every input ends in success or in diagnostics that name the file
(with a line where the mistake is written in it) or one clear error line;
never another exception, a traceback or "internal error" from a command, a
stage that runs past `HANG_S` seconds, or a run folder left half-written (nor
an export folder or predictions file after a refusal, nor a partial one).

    python tests/reliability/semantic_fuzz.py --inputs 100000 --seed 1 [--minutes 60] [--report r.json] [--findings DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import semantic_mutate as sm  # noqa: E402

HANG_S = 60.0  # past this (wall clock) any stage counts as hung
SMALL_MODEL = 5_000_000  # parameters: compiled for real on the CPU, with its initialisation; larger ones on meta
# A valid spec may unroll 4096 x 2 layers; compiling is linear in the graph and already fuzzed by spec_fuzz.py:
# graphs larger than this are checked and hashed but not compiled, so one input cannot take minutes.
COMPILE_NODES = 5_000
SEEDS = ["gpt-tiny.toml", "bert-tiny.toml", "t5-tiny.toml", "llama-tiny.toml", "bart-tiny.toml", "transformer-tiny.toml",
         "bert-tiny-tasks.toml", "bert-tiny-qa.toml", "bert-tiny-ner.toml", "bert-tiny-sentiment.toml",
         "gpt-tiny-translate.toml", "t5-tiny-translate.toml", "gpt2-small.toml", "bert-base-pretraining.toml",
         "t5-small-translate.toml", "roberta-base-mlm.toml", "bert-tiny-sentiment-lora.toml"]
TRAINABLE = {"gpt-tiny.toml", "bert-tiny.toml", "t5-tiny.toml", "llama-tiny.toml"}
TOY = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.vocab=512", "data.max_documents=24",
       "train.steps=2", "train.batch_size=2", "train.seq_len=16", "train.warmup=0", "train.eval_every=2",
       "train.eval_batches=1", "train.save_every=2", "train.log_every=1", "train.sample_tokens=0"]
# A 2-step `specc finetune` of one of a seed's [tasks.*] at the same toy size: the architecture from TOY, the task's
# own training keys from FINETUNE_TOY (formatted with the task's name), and per task type a cheaper prediction.
# Without adapters it starts from random initialisation (its tokenizer trained from [tokenizer] and [data]);
# with them (LoRA needs a pretrained run) from a toy run of the seed named in LORA_BASE, trained once.
FINETUNE_TOY = ["tasks.{}.train.steps=2", "tasks.{}.train.batch_size=2", "tasks.{}.train.warmup=0",
                "tasks.{}.train.eval_every=2", "tasks.{}.train.save_every=2", "tasks.{}.train.log_every=1"]
FINETUNE_BY_TYPE = {"translation": ["tasks.{}.beam=1", "tasks.{}.max_new_tokens=4"]}
LORA_BASE = "bert-tiny.toml"


@dataclass
class Seed:
    name: str
    data: dict[str, Any]
    fields: list[sm.Field_]
    graph: Any  # its LayerGraph, for `diff`


@dataclass
class Outcome:
    kind: str  # "ok" | "diagnostics" | "user_error" | "finding"
    stage: str  # the last stage run
    detail: str = ""
    commands: list[str] = field(default_factory=list)  # the commands run in-process beyond check
    trained: bool = False


class _Finding(Exception):
    def __init__(self, stage: str, detail: str):
        super().__init__(detail)
        self.stage, self.detail = stage, detail


class _Hung(BaseException):
    """Raised by the alarm in a stage past HANG_S (a BaseException: no `except Exception` swallows it)."""


def load_seeds(folder: Path) -> dict[str, Seed]:
    """The seeds, resolved, with their fields; `folder` holds copies of specs/ (mutants are written there)."""
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate

    out = {}
    for name in SEEDS:
        raw = parse(folder / name)
        out[name] = Seed(name, raw.data, sm.seed_fields(raw.data), build_graph(validate(raw)))
    return out


def spec_folder(tmp: Path) -> Path:
    folder = tmp / "specs"
    folder.mkdir()
    for p in (ROOT / "specs").iterdir():
        if p.suffix in (".toml", ".spec"):
            (folder / p.name).write_bytes(p.read_bytes())
    return folder


def write_mutant(m: sm.Mutant, folder: Path, rng: random.Random) -> Path:
    """The mutant's spec file in `folder` (the seed's own copy when it only carries --set arguments)."""
    if m.sets:
        return folder / m.seed
    path = folder / "mutant.toml"
    if m.overlay is not None:
        text = sm.to_toml({"format": 1, "extends": m.seed, **m.overlay})
    else:
        text = sm.to_toml(m.data)
    for edit in m.text_edits:
        text = sm.edit_text(text, edit, rng)
    path.write_text(text, encoding="utf-8")
    return path


# -- the stages ------------------------------------------------------------------------------------
def _guarded(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`, with anything but a user-facing error (and a hang) turned into a `_Finding`."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        return fn(*args)
    except _Hung:
        raise _Finding(stage, f"over {HANG_S:.0f} s") from None
    except _Finding:
        raise
    except Exception as err:  # noqa: BLE001 - the fuzzer's job is to catch what the code did not
        raise _Finding(stage, _describe(err)) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _alarm(signum: int, frame: object) -> None:
    raise _Hung()


def _check(path: Path, sets: list[str]) -> Any:
    """What `specc check` does: the graph, or "diagnostics" / "user_error" (checked for place)."""
    from specc.diagnostics import SpecError, UserError
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate

    try:
        graph = build_graph(validate(parse(path, sets)))
        if graph.spec.sections:
            from specc.runtime.train.session import plan

            plan(graph.spec, path.parent, graph)
    except SpecError as err:
        check_diagnostics(err, path)
        return "diagnostics"
    except UserError as err:
        if not str(err).strip():
            raise _Finding("check", "a UserError with no message") from None
        return "user_error"
    return graph


def check_diagnostics(err: Any, path: Path) -> None:
    """Every diagnostic has a code, a message and a file; one in the mutant's file has a line inside it."""
    if not err.diagnostics:
        raise _Finding("check", "a SpecError without diagnostics")
    lines = path.read_text(encoding="utf-8", errors="replace").count("\n") + 1
    for d in err.diagnostics:
        if not (d.code.startswith("E") and d.message and d.span is not None and d.span.file):
            raise _Finding("check", f"a diagnostic without a place: {d.code} {d.message}")
        if d.span.file == str(path) and d.span.line > lines:
            raise _Finding("check", f"a span past the end of the file: {d.render()}")
    if "Traceback" in err.render():
        raise _Finding("check", "a traceback in a rendered diagnostic")


def _compile(graph: Any, real: bool) -> str:
    """On the meta device; when `real` and the model is small, as `specc compile` builds it (CPU, initialised)."""
    from specc.compiler import NodeError, compile_model
    from specc.diagnostics import SpecError

    small = real and graph.param_count() <= SMALL_MODEL
    try:
        compile_model(graph, None if small else "meta", init=small)
    except SpecError as err:
        check_diagnostics(err, Path(graph.spec.raw.file))
        return "diagnostics"
    except NodeError:
        return "user_error"
    return "ok"


def _hash(graph: Any) -> None:
    from specc.canonical import hashes

    hashes(graph)


def run_command(argv: list[str]) -> tuple[int, str]:
    """A `specc` command in-process: its exit status; a finding if it printed a traceback or an internal error."""
    from specc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse refusing an argument
            code = exit_.code if isinstance(exit_.code, int) else 2
    text = err.getvalue()
    if "Traceback" in text or "internal error" in text or code not in (0, 1):
        raise _Finding(argv[0], f"exit {code}: {text.strip().splitlines()[-1][:200] if text.strip() else ''}")
    if code == 1 and not text.strip():
        raise _Finding(argv[0], "exit 1 with nothing said")
    return code, text


def _train(path: Path, sets: list[str], work: Path) -> int:
    """A 2-step `specc train` at toy size into `work`/run: its exit status; the run folder holds only complete
    checkpoints."""
    out = work / "run"
    code, _ = run_command(["train", str(path), "--out", str(out), *sum((["--set", s] for s in [*TOY, *sets]), [])])
    _check_run_folder(out, "train", code)
    return code


def _finetune(path: Path, sets: list[str], task: tuple[str, str], base: Path | None, work: Path) -> int:
    """A 2-step `specc finetune` of `task` (name, type) at toy size into `work`/run, from `base` (a run) or random
    initialisation: its exit status."""
    name, kind = task
    out = work / "run"
    toy = [s for s in TOY if s.startswith("params.")]
    if base is None:  # its tokenizer is trained from the spec's [tokenizer] and [data]: keep that small too
        toy += ["data.max_documents=24", f'tasks.{name}.from=""']
    toy += [s.format(name) for s in FINETUNE_TOY + FINETUNE_BY_TYPE.get(kind, [])]
    argv = ["finetune", str(path), "--out", str(out), "--quiet", "--task", name]
    argv += ["--from", str(base)] if base is not None else []
    code, _ = run_command(argv + sum((["--set", s] for s in [*toy, *sets]), []))
    _check_run_folder(out, "finetune", code)
    return code


def _check_run_folder(out: Path, stage: str, code: int) -> None:
    """The run folder holds no temporary file and only complete checkpoints (the caller's temporary folder holding
    it is removed afterwards)."""
    if out.exists():
        leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".tmp")]
        checkpoints = [p for p in (out / "checkpoints").glob("*") if p.is_dir()]
        torn = [p.name for p in checkpoints if not (p / "COMPLETE").exists()]
        if leftovers or torn:
            raise _Finding(stage, f"exit {code}; half-written run folder: {leftovers + torn}")


# -- the commands that read a finished run -----------------------------------------------------------
PREDICT_TEXT = "the cat sat on the mat"


def after_run(out: Path, work: Path, task_run: bool, done: list[str]) -> None:
    """`eval`, then `generate` (a pretraining run; a refusal names the objective when it is no LM) or `predict` (a
    fine-tuned run, on a small input file), then `export-hf`, on the run a toy train/finetune left in `out`: each
    guarded on its own (exit 0, or exit 1 with one message; never a traceback, a hang or a half-written output);
    each command run is added to `done`."""
    _guarded("eval", run_command, ["eval", str(out)])
    done.append("eval")
    if task_run:
        _guarded("predict", _predict, out, work)
        done.append("predict")
    else:
        _guarded("generate", run_command, ["generate", str(out), "--prompt", "the", "--max-new-tokens", "3"])
        done.append("generate")
    _guarded("export-hf", _export_hf, out, work)
    done.append("export-hf")


def _predict(out: Path, work: Path) -> None:
    """`specc predict` on two records holding the task's input fields; its output file is whole (one JSON object
    per record) or absent."""
    from specc.diagnostics import UserError
    from specc.runtime.train.finetune import load_task_run

    try:
        data = load_task_run(out).setup.task.params.data
    except UserError:
        data = None  # predict itself says why the run cannot be read
    record: dict[str, Any] = {}
    for name in data.reads() if data is not None else ("text",):
        if name != (data.label_field() if data is not None else None):
            _put(record, name, PREDICT_TEXT.split() if name == getattr(data, "tokens", None) else PREDICT_TEXT)
    source = work / "predict-input.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for _ in range(2)), encoding="utf-8")
    target = work / "predictions.jsonl"
    code, _ = run_command(["predict", str(out), "--input", str(source), "--output", str(target), "--quiet"])
    _check_no_temporaries(work, "predict", code)
    if code == 1 and target.exists():
        raise _Finding("predict", "exit 1 but the predictions file was written")
    if code == 0:
        lines = target.read_text(encoding="utf-8").splitlines() if target.exists() else []
        if len(lines) != 2 or not all(isinstance(json.loads(line), dict) for line in lines):
            raise _Finding("predict", f"exit 0 with {len(lines)} prediction lines for 2 records")


def _put(record: dict[str, Any], dotted: str, value: Any) -> None:
    """`value` at a field's dotted path (`translation.en` reads into an object)."""
    *parents, last = dotted.split(".")
    for key in parents:
        record = record.setdefault(key, {})
    record[last] = value


def _export_hf(out: Path, work: Path) -> None:
    """`specc export-hf`: a folder whose config.json and weights read back (exit 0), or no folder at all (exit 1,
    a family that does not match is one line saying so)."""
    target = work / "hf"
    code, _ = run_command(["export-hf", str(out), "-o", str(target)])
    _check_no_temporaries(work, "export-hf", code)
    if code == 1 and target.exists():
        raise _Finding("export-hf", f"exit 1 but {target.name}/ was left: {sorted(p.name for p in target.iterdir())}")
    if code == 0:
        from safetensors import safe_open

        try:
            json.loads((target / "config.json").read_text(encoding="utf-8"))
            with safe_open(str(target / "model.safetensors"), "pt") as weights:
                weights.keys()
        except (OSError, ValueError) as err:
            raise _Finding("export-hf", f"exit 0 with an incomplete export: {_describe(err)}") from None


def _check_no_temporaries(work: Path, stage: str, code: int) -> None:
    leftovers = [p.name for p in work.iterdir() if p.name.startswith(".tmp")]
    if leftovers:
        raise _Finding(stage, f"exit {code}; temporary files left: {leftovers}")


def lora_base(folder: Path) -> Path:
    """A toy pretraining run of LORA_BASE (trained once per campaign, in `folder`) for the adapters' seeds."""
    out = folder / "lora-base"
    if not (out / "checkpoints").exists():
        code, text = run_command(["train", str(folder / LORA_BASE), "--out", str(out), "--quiet",
                                  *sum((["--set", s] for s in TOY), [])])
        if code != 0:
            raise _Finding("finetune", f"the toy base run of {LORA_BASE} failed: {text.strip()[-200:]}")
    return out


# -- one input -------------------------------------------------------------------------------------
def check_input(m: sm.Mutant, seed: Seed, folder: Path, rng: random.Random, commands: float, train: float) -> Outcome:
    """Run mutant `m` through the stages; `commands` and `train` are the chances of the sampled extras."""
    path = write_mutant(m, folder, rng)
    stage = "check"
    done: list[str] = []
    trained = False
    try:
        found = _guarded("check", _check, path, m.sets)
        kind = found if isinstance(found, str) else "ok"
        if kind == "ok" and len(found.nodes) <= COMPILE_NODES:
            stage = "compile"
            kind = _guarded("compile", _compile, found, rng.random() < commands)
            stage = "hash"
            _guarded("hash", _hash, found)
        sets = sum((["--set", s] for s in m.sets), [])
        if rng.random() < commands:  # (hash and diff take no --set: their mutant is the seed's own file then)
            for argv in (["summary", str(path), *sets], ["hash", str(path)], ["diff", str(folder / seed.name), str(path)]):
                stage = argv[0]
                _guarded(stage, run_command, argv)
                done.append(stage)
        if rng.random() < commands / 5:  # explain reads every value: the slowest command
            stage = "explain"
            _guarded("explain", run_command, ["explain", str(path), *sets])
            done.append("explain")
        if kind == "ok" and seed.name in TRAINABLE and rng.random() < train:
            stage = "train"
            with tempfile.TemporaryDirectory(prefix="specc-sem-train-") as work:
                code = _guarded("train", _train, path, m.sets, Path(work))
                done.append("train")
                trained = True
                if code == 0:
                    after_run(Path(work) / "run", Path(work), False, done)
        tasks = _tasks(seed)
        if kind == "ok" and tasks and rng.random() < train:
            stage = "finetune"
            task = rng.choice(tasks)
            base = _guarded("finetune", lora_base, folder) if "adapters" in seed.data else None
            with tempfile.TemporaryDirectory(prefix="specc-sem-finetune-") as work:
                code = _guarded("finetune", _finetune, path, m.sets, task, base, Path(work))
                done.append("finetune")
                trained = True
                if code == 0:
                    after_run(Path(work) / "run", Path(work), True, done)
        return Outcome(kind, stage, commands=done, trained=trained)
    except _Finding as finding:
        return Outcome("finding", finding.stage, finding.detail, done, trained)


def _tasks(seed: Seed) -> list[tuple[str, str]]:
    """The seed's tasks (name, type) a toy finetune can run: those with a type."""
    tasks = seed.data.get("tasks") or {}
    return sorted((n, t["type"]) for n, t in tasks.items() if isinstance(t, dict) and isinstance(t.get("type"), str))


def _describe(err: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/specc/" in f.filename]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(err).__name__}: {str(err)[:200]}{where}"


# -- campaigns -------------------------------------------------------------------------------------
@dataclass
class Tally:
    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    mutations: Counter = field(default_factory=Counter)  # by kind: value, drop, dangling, cycle, section, text
    sections: Counter = field(default_factory=Counter)  # value mutations by section
    forms: Counter = field(default_factory=Counter)  # file, extends, --set
    commands: Counter = field(default_factory=Counter)
    trained: int = 0
    findings: list[dict[str, str]] = field(default_factory=list)

    def add(self, m: sm.Mutant, outcome: Outcome, text: str) -> None:
        self.inputs += 1
        self.outcomes[outcome.kind] += 1
        self.mutations.update(m.kinds)
        self.sections.update(path[0] if len(path) > 1 else "top" for path, _ in m.values)
        self.forms["--set" if m.sets else "extends" if m.overlay is not None else "file"] += 1
        self.commands.update(["check"] + outcome.commands)
        self.trained += outcome.trained
        if outcome.kind == "finding":
            self.findings.append({"seed": m.seed, "stage": outcome.stage, "detail": outcome.detail,
                                  "labels": "; ".join(m.labels), "input": text[:4000], "sets": " ".join(m.sets)})

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outcomes": dict(self.outcomes), "mutations": dict(self.mutations),
                "sections": dict(self.sections), "forms": dict(self.forms), "commands": dict(self.commands),
                "trained": self.trained, "findings": self.findings}

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return f"{self.inputs} inputs ({kinds}); {len(self.findings)} findings; {self.trained} trained"


def mutants(seeds: dict[str, Seed], count: int, seed: int) -> Iterator[tuple[sm.Mutant, random.Random]]:
    rng = random.Random(seed)
    names = sorted(seeds)
    for _ in range(count):
        s = seeds[rng.choice(names)]
        yield sm.mutate(s.name, s.data, s.fields, rng), rng


def warm_up(folder: Path) -> None:
    """Compile the seeds once before the clock runs. torch imports parts of itself (and sympy) on first use; a
    first compile on a busy machine can pass HANG_S, and the alarm would then interrupt that import half-done,
    leaving a broken module behind that fails every later input (a cascade of false findings, seen once)."""
    import sympy  # noqa: F401  (torch's symbolic shapes import it lazily)

    import specc

    for name in ("gpt-tiny.toml", "bert-tiny.toml", "t5-tiny.toml"):
        specc.compile_file(folder / name)


def campaign(count: int, seed: int, commands: float = 0.05, train: float = 0.002, minutes: float | None = None,
             findings_dir: Path | None = None, progress: Path | None = None) -> Tally:
    """`count` inputs (or as many as fit in `minutes`); each finding's spec is kept in `findings_dir`."""
    tally = Tally()
    deadline = time.monotonic() + 60 * minutes if minutes else None
    with tempfile.TemporaryDirectory(prefix="specc-semantic-") as tmp:
        folder = spec_folder(Path(tmp))
        seeds = load_seeds(folder)
        warm_up(folder)
        for n, (m, rng) in enumerate(mutants(seeds, count, seed)):
            outcome = check_input(m, seeds[m.seed], folder, rng, commands, train)
            path = folder / (m.seed if m.sets else "mutant.toml")
            text = path.read_text(encoding="utf-8", errors="replace")
            tally.add(m, outcome, text)
            if outcome.kind == "finding" and findings_dir is not None:
                findings_dir.mkdir(parents=True, exist_ok=True)
                (findings_dir / f"finding-{seed}-{n}.toml").write_text(text)
                (findings_dir / f"finding-{seed}-{n}.txt").write_text(json.dumps(tally.findings[-1], indent=1))
            if progress is not None and tally.inputs % 500 == 0:
                progress.write_text(json.dumps({**tally.as_dict(), "findings": len(tally.findings)}) + "\n")
            if deadline is not None and time.monotonic() > deadline:
                break
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=None, help="stop after this long (the tally says how many ran)")
    ap.add_argument("--commands", type=float, default=0.05, help="share of inputs also run through summary/hash/diff")
    ap.add_argument("--train", type=float, default=0.002, help="share of valid inputs also trained (train or finetune)")
    ap.add_argument("--report", type=Path, help="write the tally as JSON here")
    ap.add_argument("--findings", type=Path, help="keep each finding's input in this folder")
    ap.add_argument("--progress", type=Path, help="rewrite this file with the running tally every 500 inputs")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    tally = campaign(args.inputs, args.seed, args.commands, args.train, args.minutes, args.findings, args.progress)
    report = {**tally.as_dict(), "seed": args.seed, "wall_s": round(time.perf_counter() - started, 1)}
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    print(tally.line(), f"in {report['wall_s']} s")
    for f in tally.findings[:30]:
        print(f"  {f['seed']} [{f['stage']}] {f['detail']}\n      {f['labels']}")
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
