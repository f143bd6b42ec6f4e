"""Start-up time of the commands that run no model: process wall time against `python -c pass`.

    python -m benchmarks.startup [--reps N] [--json FILE]

Every command runs as its own process (`python -m specc ...`), interleaved
round by round with the baseline `python -c pass` (A B C ... A B C ...) so a
machine whose load drifts slows them alike; the table gives medians over the
rounds and each command's time above the baseline's, in wall time and in CPU
time (user + system of the process, which other work on a shared machine
inflates less). `compile` is included as the reference of a command that
imports torch. The load average is printed with the figures: on a shared
machine they grow with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def commands(tmp: Path) -> dict[str, list[str]]:
    old, new = tmp / "old.toml", tmp / "new.toml"
    text = (SPECS / "gpt2-small.toml").read_text()  # extends nothing, so it can move
    old.write_text(text)
    new.write_text(text.replace("layers = 12", "layers = 6"))
    specc = [sys.executable, "-m", "specc"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "specc --help": [*specc, "--help"],
        "specc check (gpt-tiny, with [train])": [*specc, "check", str(SPECS / "gpt-tiny.toml")],
        "specc check (bert-tiny-tasks)": [*specc, "check", str(SPECS / "bert-tiny-tasks.toml")],
        "specc fmt --check": [*specc, "fmt", "--check", str(SPECS / "gpt-tiny.toml")],
        "specc convert": [*specc, "convert", str(old), "-o", str(tmp / "old.spec")],
        "specc explain": [*specc, "explain", str(SPECS / "gpt-tiny.toml"), "params.d_model"],
        "specc hash": [*specc, "hash", str(SPECS / "gpt-tiny.toml")],
        "specc diff (two specs)": [*specc, "diff", str(old), str(new)],
        "specc textconv (git driver)": [*specc, "textconv", str(old)],
        "specc ops": [*specc, "ops"],
        "specc compile (imports torch)": [*specc, "compile", str(SPECS / "gpt-tiny.toml")],
    }


def run(reps: int, say=print) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # As on a user's machine, the first (uncounted) round writes the modules' bytecode caches and the counted rounds
    # read them: with PYTHONDONTWRITEBYTECODE set (as on this project's build machine) every round would compile
    # specc's ~500 modules from source again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp))
        samples: dict[str, list[float]] = {name: [] for name in cmds}
        cpu: dict[str, list[float]] = {name: [] for name in cmds}
        load_before = os.getloadavg()
        for round_ in range(reps + 1):  # the first round warms the file cache and is not counted
            for name, argv in cmds.items():
                before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=300)
                elapsed, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr.decode()}")
                if round_:
                    samples[name].append(elapsed)
                    cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        load_after = os.getloadavg()
    base, cpu_base = statistics.median(samples["python -c pass"]), statistics.median(cpu["python -c pass"])
    rows = [{"command": name, "median_s": statistics.median(s), "above_python_s": statistics.median(s) - base,
             "low_s": min(s), "high_s": max(s), "cpu_median_s": statistics.median(cpu[name]),
             "cpu_above_python_s": statistics.median(cpu[name]) - cpu_base} for name, s in samples.items()]
    result = {"reps": reps, "cpus": os.cpu_count(), "load_1min": [load_before[0], load_after[0]], "rows": rows}
    say(markdown(result))
    return result


def markdown(result: dict) -> str:
    lines = [f"{result['reps']} rounds, {result['cpus']} CPUs, load average (1 min) {result['load_1min'][0]:.1f} before, "
             f"{result['load_1min'][1]:.1f} after", "",
             "| command | median s | above `python -c pass` | min–max s | CPU s | CPU above |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['command']} | {r['median_s']:.2f} | {r['above_python_s']:+.2f} | "
                     f"{r['low_s']:.2f}–{r['high_s']:.2f} | {r['cpu_median_s']:.2f} | {r['cpu_above_python_s']:+.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = run(args.reps)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
