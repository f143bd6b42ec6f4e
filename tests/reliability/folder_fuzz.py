"""Damage kinds x commands on a toy run folder, its Hugging Face export and a JSONL data file, each command in a
process of its own.

The oracle, for every (damage, command): exit status 0 or 1 (no crash signal, no internal error's 2), no
traceback, no hang (a generous timeout), nothing written outside the command's own target, and the run's
checkpoints that were not damaged byte-identical afterwards. Used by test_folder_fuzz.py (a seeded handful per CI
run) and from the command line for a whole campaign:

    python tests/reliability/folder_fuzz.py --cases 0 --seed 1 --report fuzz.json   # 0: every (damage, command)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
GPT_TINY = str(ROOT / "specs" / "gpt-tiny.toml")
TOY = ["params.layers=1", "params.d_model=32", "params.heads=2", "params.vocab=512", "data.max_documents=12",
       "train.batch_size=4", "train.seq_len=32", "train.warmup=1", "train.sample_tokens=0", "train.eval_batches=1",
       "train.steps=2", "train.save_every=1", "train.eval_every=2", "train.keep=10"]
DEEP = "[" * 100_000 + "]" * 100_000


def _sets(*extra: str) -> list[str]:
    merged = {s.split("=", 1)[0]: s for s in [*TOY, *extra]}
    return [a for s in merged.values() for a in ("--set", s)]


# -- damage: (file relative to the target, what to do to it) --------------------------------------------------------
Mutate = Callable[[Path, random.Random], None]


def _truncate(p: Path, r: random.Random) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: r.randrange(len(data) or 1)])


def _flip(p: Path, r: random.Random) -> None:
    data = bytearray(p.read_bytes())
    for _ in range(1 + len(data) // 2000):
        if data:
            data[r.randrange(len(data))] ^= 1 << r.randrange(8)
    p.write_bytes(bytes(data))


def _folder(p: Path, r: random.Random) -> None:
    p.unlink()
    p.mkdir()


MUTATIONS: dict[str, Mutate] = {
    "truncated": _truncate,
    "empty": lambda p, r: p.write_bytes(b""),
    "bits flipped": _flip,
    "deleted": lambda p, r: p.unlink(),
    "a folder": _folder,
    "JSON nested 100,000 deep": lambda p, r: p.write_text(DEEP),
    "a 5,000-digit integer": lambda p, r: p.write_text("9" * 5000),
    "a lone surrogate": lambda p, r: p.write_text('{"x": "\\ud800"}'),
    "binary": lambda p, r: p.write_bytes(bytes(r.randrange(256) for _ in range(512))),
}
RUN_FILES = ["model.safetensors", "optimizer.pt", "rng.pt", "state.json", "spec.json", "lineage.json", "tokenizer.json",
             "COMPLETE", "../../metrics.jsonl"]
HF_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


@dataclass(frozen=True)
class Case:
    target: str  # "run", "hf" or "data"
    file: str
    mutation: str
    command: str


RUN_COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "train --resume": lambda run, out: ["train", GPT_TINY, "--resume", str(run), "--quiet", *_sets("train.steps=3")],
    "eval": lambda run, out: ["eval", str(run)],
    "generate": lambda run, out: ["generate", str(run), "--prompt", "The", "--max-new-tokens", "3"],
    "export-hf": lambda run, out: ["export-hf", str(run), "-o", str(out / "hf")],
    "warm-start": lambda run, out: ["warm-start", str(run), GPT_TINY, "--out", str(out / "warm"),
                                    *_sets("params.layers=2")],
    "diff": lambda run, out: ["diff", GPT_TINY, str(run)],
}


def all_cases() -> list[Case]:
    cases = [Case("run", f, m, c) for f in RUN_FILES for m in MUTATIONS for c in RUN_COMMANDS]
    cases += [Case("hf", f, m, "import-hf") for f in HF_FILES for m in MUTATIONS]
    cases += [Case("data", "docs.jsonl", m, "train") for m in MUTATIONS if m not in ("deleted",)]
    return cases


# -- the toy sources, made once -----------------------------------------------------------------------------------------
def make_sources(folder: Path, env: dict[str, str]) -> dict[str, Path]:
    run, hf, data = folder / "run", folder / "hf", folder / "docs.jsonl"
    _specc(["train", GPT_TINY, "--out", str(run), "--quiet", *_sets()], env, check=True)
    _specc(["export-hf", str(run), "-o", str(hf)], env, check=True)
    data.write_text("".join(json.dumps({"text": f"document {i} " * 40}) + "\n" for i in range(40)))
    return {"run": run, "hf": hf, "data": data}


def _specc(argv: list[str], env: dict[str, str], check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "specc", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"specc {' '.join(argv)} failed:\n{done.stderr}")
    return done


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- one case -------------------------------------------------------------------------------------------------------------
def run_case(case: Case, sources: dict[str, Path], scratch: Path, env: dict[str, str], seed: int,
             timeout: float = 600) -> str | None:
    """None when the oracle holds, else what broke it."""
    work = scratch / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = work / "out"
    out.mkdir()
    copied = work / case.target if case.target != "data" else work / "docs.jsonl"
    (shutil.copytree if sources[case.target].is_dir() else shutil.copy)(sources[case.target], copied)
    if case.target == "run":
        ckpts = sorted((copied / "checkpoints").iterdir())
        victim = ckpts[-1] / case.file
        intact = {c.name: _digests(c) for c in ckpts[:-1]}
    else:
        victim = copied / case.file if case.target == "hf" else copied
        intact = {}
    if not victim.exists() and case.mutation != "deleted":
        victim.write_text("{}")
    MUTATIONS[case.mutation](victim, random.Random(seed))
    before = _digests(work)
    if case.target == "run":
        argv = RUN_COMMANDS[case.command](copied, out)
    elif case.target == "hf":
        argv = ["import-hf", str(copied), "-o", str(out / "imported.toml")]
    else:
        argv = ["train", GPT_TINY, "--out", str(out / "run"), "--quiet",
                *_sets("data.source=jsonl", f'data.path="{copied}"', "data.max_documents=1000")]
    try:
        done = _specc(argv, env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"hang (no answer in {timeout:.0f} s)"
    if done.returncode not in (0, 1):
        return f"exit status {done.returncode}" + (" (a crash signal)" if done.returncode < 0 else "") + f": {done.stderr[-800:]}"
    if "Traceback" in done.stderr + done.stdout:
        return f"a traceback: {done.stderr[-800:]}"
    if done.returncode == 1 and not done.stderr.strip():
        return "exit status 1 without a message"
    after = _digests(work)
    allowed = ("out/",) + ((f"{case.target}/",) if case.command == "train --resume" else ())
    touched = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k) and not k.startswith(allowed))
    if touched:
        return f"wrote outside its target: {touched[:5]}"
    for name, digests in intact.items():
        if _digests(copied / "checkpoints" / name) != digests:
            return f"the intact checkpoint {name} changed"
    return None


def campaign(cases: list[Case], seed: int, env: dict[str, str], log: Callable[[str], None] = print
             ) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="specc-folder-fuzz-") as tmp:
        sources = make_sources(Path(tmp) / "sources", env)
        findings = {}
        for i, case in enumerate(cases):
            broke = run_case(case, sources, Path(tmp) / "scratch", env, seed + i)
            if broke:
                findings[f"{case.target}/{case.file} {case.mutation} × {case.command}"] = broke
                log(f"FINDING {case}: {broke}")
    return {"cases": len(cases), "findings": findings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=0, help="how many (damage, command) pairs to draw; 0: all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", help="write the counts and findings as JSON here")
    args = parser.parse_args()
    cases = all_cases()
    if args.cases:
        cases = random.Random(args.seed).sample(cases, min(args.cases, len(cases)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "SPECC_CACHE": os.environ.get("SPECC_CACHE") or tempfile.mkdtemp(prefix="specc-fuzz-cache-")}
    result = campaign(cases, args.seed, env)
    print(f"{result['cases']} cases, {len(result['findings'])} findings")  # type: ignore[arg-type]
    if args.report:
        Path(args.report).write_text(json.dumps(result, indent=1))
    return 1 if result["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
