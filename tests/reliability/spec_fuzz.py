"""A fuzzer for the spec front ends (TOML and DSL), run by the reliability tests and on its own.

Every input goes the way `specc check` and `specc compile` take it: read from a
file (bytes: invalid UTF-8 and NUL bytes included), parse with `extends`,
validate, build the graph, check the runtime sections, compile on the meta
device; and `specc fmt` / `specc convert` on the same text. The contract: each
input ends in a model or in diagnostics that carry spans, never in another
exception, and never hanging: a stage past `HANG_S` seconds of CPU time is a finding.
(How fast the front ends are is measured, `slowest_front_end_cpu_s` in the tally,
not asserted: a CPU budget would fail on a loaded machine; speed belongs to benchmarks.)

Inputs are the real files of `specs/`, mutated as raw bytes (bit flips, cuts,
splices between specs, numbers and tokens swapped for hostile ones: `1e309`,
`2 ** 2 ** 2 ** 64`, 100,000 open brackets, NUL bytes, ...).

    python tests/reliability/spec_fuzz.py --inputs 50000 --seed 1 [--report fuzz.json] [--findings DIR]

runs a long campaign and prints (or writes) its tally.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
HANG_S = 60.0  # CPU seconds past which any stage (check, compile, fmt, convert) counts as hung: a generous guard

NUMBERS = [b"0", b"-1", b"1", b"3", b"4097", b"2147483648", b"9223372036854775808", b"18446744073709551616",
           b"1" + b"0" * 400, b"9" * 5000, b"1e309", b"-1e309", b"1e-320", b"nan", b"inf", b"-inf", b"0.5", b"-0.0",
           b"1_000", b"0x7fffffffffffffff", b"1e3", b'"10 ** 12"', b'"2 ** 2 ** 2 ** 64"', b"10 ** 12",
           b"2 ** 2 ** 2 ** 64", b'"1 / 0"', b'"d_model / 0"', b'"sqrt(-1)"', b'"9 ** 9 ** 9"']
TOKENS = [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\r", b"\r\n", b"\t", b"\x0c", b"\\", b'"', b"'",
          b'"""', b"'''", b"#", b"=", b".", b",", b"[", b"]", b"{", b"}", b"(", b")", b"->", b"?", b":", b"\n",
          b"[" * 100_000, b"{a = " * 2_000, b"(" * 5_000, b"a." * 5_000, b"-" * 3_000, b"a" * 100_000,
          b'extends = "/etc/passwd"\n', b'extends = "../../../../etc/passwd"\n', b'extends = "fuzz.toml"\n',
          b'extends = "gpt2-small.toml"\n', b'extends = "gpt2-small.spec"\n', b"extends = 3\n",
          b"repeat 10**12", b'repeat = "10 ** 12"', b"repeat = 0", b"repeat = -1",
          b"override", b"with", b"block", b"model {", b"params {", b"input", b"output", b"int[batch, seq]",
          b"float[b, s, d]", b"[model]\n", b"[model.nodes]\n", b"[[model]]\n", b"[params]\n", b"[train]\n",
          b"format = 0\n", b"format = 99\n", b"\\u0000", b"\\uD800", b"__import__('os')", b'"open(\'x\')"',
          b'"__class__"', b'"x.__class__"', b'"lambda: 0"', b'"[i for i in ()]"', b"${HOME}", b"$HOME", b"%(x)s"]
_NUMBER = re.compile(rb"(?<![A-Za-z_0-9.])-?[0-9][0-9_.eE+-]*")
_STRING = re.compile(rb'"[^"\n]*"')


def seeds() -> dict[str, bytes]:
    """The corpus every mutation starts from, by file name: the real specs, and the DSL form of each TOML one
    (``NAME-dsl.spec``, written by `specc convert`), so both front ends get as many inputs."""
    from specc.frontend.formats import convert_text

    corpus = {p.name: p.read_bytes() for p in sorted(SPECS.iterdir()) if p.suffix in (".toml", ".spec")}
    for name, data in list(corpus.items()):
        if name.endswith(".toml"):
            corpus[name.replace(".toml", "-dsl.spec")] = convert_text(data.decode(), name, ".spec").encode()
    return corpus


# -- mutations ------------------------------------------------------------------------------------
def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """`data` with 1 to 4 random mutations; `pool` supplies splices from other specs."""
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        data = rng.choice(_MUTATIONS)(data, rng, pool)
    return data


def _at(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data) + 1)


def _line_start(data: bytes, rng: random.Random) -> int:
    starts = [0] + [m.end() for m in re.finditer(rb"\n", data)]
    return rng.choice(starts)


def _flip_bit(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]


def _random_byte(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    i = _at(data, rng)
    return data[:i] + bytes([rng.randrange(256)]) + data[i + rng.randrange(2) :]


def _insert_token(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    i = _line_start(data, rng) if rng.random() < 0.4 else _at(data, rng)
    return data[:i] + rng.choice(TOKENS) + data[i:]


def _cut(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    i = _at(data, rng)
    return data[:i] + data[i + rng.randrange(1, 48) :]


def _duplicate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    i = _at(data, rng)
    j = min(len(data), i + rng.randrange(1, 200))
    return data[:j] + data[i:j] * rng.choice((1, 2, 50)) + data[j:]


def _splice(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    other = rng.choice(pool)
    i, k = _at(data, rng), _at(other, rng)
    piece = other[k : k + rng.randrange(1, 400)]
    return data[:i] + piece + data[i + rng.randrange(0, 64) :]


def _swap_number(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    found = list(_NUMBER.finditer(data))
    if not found:
        return _insert_token(data, rng, pool)
    m = rng.choice(found)
    return data[: m.start()] + rng.choice(NUMBERS) + data[m.end() :]


def _swap_string(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    found = list(_STRING.finditer(data))
    other = list(_STRING.finditer(rng.choice(pool)))
    if not found or not other:
        return _cut(data, rng, pool)
    m = rng.choice(found)
    return data[: m.start()] + rng.choice(other).group() + data[m.end() :]


def _shuffle_lines(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    lines = data.split(b"\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    action = rng.randrange(3)
    if action == 0:
        lines[i], lines[j] = lines[j], lines[i]
    elif action == 1:
        del lines[i]
    else:
        lines.insert(i, rng.choice(rng.choice(pool).split(b"\n")))
    return b"\n".join(lines)


_MUTATIONS = [_flip_bit, _random_byte, _insert_token, _insert_token, _cut, _duplicate, _splice, _swap_number,
              _swap_number, _swap_string, _shuffle_lines, _shuffle_lines]


# -- the oracle -----------------------------------------------------------------------------------
class _OverTime(BaseException):
    """Raised by the CPU timer inside a stage that runs past its limit (a BaseException, so that no
    `except Exception` in the code under test can swallow it)."""


@dataclass
class Outcome:
    kind: str  # "model" | "diagnostics" | "user_error" | "finding"
    stage: str  # the stage that ended it: "check", "compile", "fmt" or "convert"
    seconds: float  # CPU time of the slowest front-end command: check, fmt or convert
    detail: str = ""  # for findings: what went wrong, with the innermost specc frame
    compile_seconds: float = 0.0


def check_input(data: bytes, suffix: str, folder: Path, hang: float = HANG_S) -> Outcome:
    """Run one input (spec bytes, `.toml` or `.spec`) through every stage, in `folder` (which holds
    copies of the real specs, so `extends` resolves as it would in `specs/`).

    Each stage (`check`: parse → validate → build_graph → runtime sections; compiling on the meta
    device; `fmt`; `convert`) that runs past `hang` CPU seconds is a finding (hung)."""
    path = folder / f"fuzz{suffix}"
    path.write_bytes(data)
    front = compile_s = 0.0
    try:
        found, front = _timed(hang, _check, path)
        kind = found if isinstance(found, str) else None
        if kind is None:
            kind, compile_s = _timed(hang, _compile, found)
        text = path.read_bytes().decode("utf-8", errors="replace")
        _, fmt_s = _timed(hang, _fmt, path, text)
        _, convert_s = _timed(hang, _convert, path, text, ".spec" if suffix == ".toml" else ".toml")
        return Outcome(kind, "convert", max(front, fmt_s, convert_s), compile_seconds=compile_s)
    except _Finding as finding:
        return Outcome("finding", finding.stage, front, finding.detail, compile_s)



class _Finding(Exception):
    def __init__(self, stage: str, detail: str):
        super().__init__(detail)
        self.stage, self.detail = stage, detail


def _timed(limit: float, fn: Any, *args: Any) -> tuple[Any, float]:
    """`fn(*args)` and its CPU seconds; a `_Finding` if it raises anything but diagnostics, or runs
    past `limit` seconds of CPU time."""
    stage = fn.__name__.strip("_")
    previous = signal.signal(signal.SIGPROF, _over_time)
    start = _cpu()
    signal.setitimer(signal.ITIMER_PROF, max(limit, 0.01))
    try:
        return fn(*args), _cpu() - start
    except _OverTime:
        raise _Finding(stage, f"over {limit:.2f} s of CPU time") from None
    except Exception as err:  # noqa: BLE001 - the fuzzer's job is to catch what the code did not
        raise _Finding(stage, _describe(err)) from None
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _check(path: Path) -> Any:
    """parse → validate → build_graph → runtime sections: the graph, or "diagnostics" / "user_error"."""
    from specc.diagnostics import SpecError, UserError
    from specc.frontend import parse
    from specc.graph import build_graph
    from specc.schema import validate

    try:
        graph = build_graph(validate(parse(path)))
        if graph.spec.sections:
            from specc.runtime.train.session import plan

            plan(graph.spec, path.parent, graph)
    except SpecError as err:
        _check_diagnostics(err, path)
        return "diagnostics"
    except UserError as err:
        assert str(err), "an empty error message"
        return "user_error"
    return graph


def _compile(graph: Any) -> str:
    """The module tree on the meta device (nothing allocated): "model", or diagnostics."""
    from specc.compiler import NodeError, compile_model
    from specc.diagnostics import SpecError

    try:
        compile_model(graph, "meta", init=False)
    except SpecError as err:
        _check_diagnostics(err, Path(graph.spec.raw.file))
        return "diagnostics"
    except NodeError as err:
        assert str(err), "an empty error message"
        return "user_error"
    return "model"


def _fmt(path: Path, text: str) -> None:
    """`specc fmt` on the file as written: text, or diagnostics."""
    from specc.diagnostics import SpecError
    from specc.frontend.formats import format_text

    try:
        format_text(text, str(path))
    except SpecError as err:
        _check_diagnostics(err, path)


def _convert(path: Path, text: str, to: str) -> None:
    """`specc convert` to the other form: text that reads back as the same tree, or diagnostics."""
    from specc.diagnostics import SpecError
    from specc.frontend import parse_text
    from specc.frontend.formats import convert_text

    try:
        out = convert_text(text, str(path), to)
    except SpecError as err:
        _check_diagnostics(err, path)
        return
    try:
        back = parse_text(out, f"converted{to}").data
    except SpecError as err:  # only a size limit may refuse what convert wrote (a DSL form over 20,000 tokens)
        assert all(d.code == "E002" for d in err.diagnostics), f"convert wrote what does not parse: {err}"
        return
    same = json.dumps(back, sort_keys=True, default=str) == json.dumps(parse_text(text, str(path)).data, sort_keys=True,
                                                                       default=str)  # NaN equals NaN here
    assert same, "convert changed the tree"


def _check_diagnostics(err: Any, path: Path) -> None:
    """Each diagnostic names a file and, when it has a line, one inside that file; rendering works."""
    sources: dict[str, str] = {}
    for d in err.diagnostics:
        assert d.code.startswith("E") and d.message, d
        assert d.span is not None and d.span.file, f"diagnostic without a span: {d.render()}"
        if d.span.line > 0 and d.span.file == str(path):
            text = path.read_bytes().decode("utf-8", errors="replace")
            sources[d.span.file] = text
            assert d.span.line <= text.count("\n") + 1, f"span past the end of the file: {d.render()}"
            assert d.span.col >= 1, f"span before the line: {d.render()}"
    rendered = err.render(sources)
    assert "Traceback" not in rendered


def _describe(err: BaseException) -> str:
    """`Type: message` and the innermost frame in specc/ or runtime/ (the place to look)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/specc/" in f.filename or "/runtime/" in f.filename]
    where = f" at {Path(frames[-1].filename).relative_to(ROOT)}:{frames[-1].lineno}" if frames else ""
    return f"{type(err).__name__}: {str(err)[:200]}{where}"


def _over_time(signum: int, frame: object) -> None:
    raise _OverTime()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- campaigns ------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What a campaign tried and found."""

    inputs: int = 0
    kinds: Counter = field(default_factory=Counter)
    by_form: Counter = field(default_factory=Counter)
    slowest: float = 0.0  # CPU seconds of the front-end stages of one input
    slowest_compile: float = 0.0
    findings: list[dict[str, str]] = field(default_factory=list)

    def add(self, outcome: Outcome, seed: str, data: bytes) -> None:
        self.inputs += 1
        self.kinds[outcome.kind] += 1
        self.by_form[Path(seed).suffix] += 1
        self.slowest = max(self.slowest, outcome.seconds)
        self.slowest_compile = max(self.slowest_compile, outcome.compile_seconds)
        if outcome.kind == "finding":
            self.findings.append({"seed": seed, "stage": outcome.stage, "detail": outcome.detail,
                                  "input": data[:300].decode("utf-8", errors="backslashreplace")})

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outcomes": dict(self.kinds), "by_form": dict(self.by_form),
                "slowest_front_end_cpu_s": round(self.slowest, 3), "slowest_compile_cpu_s": round(self.slowest_compile, 3),
                "findings": self.findings}

    def line(self) -> str:
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(self.kinds.items()))
        return (f"{self.inputs:,} inputs ({kinds}); slowest front end {self.slowest:.2f} s CPU, compile "
                f"{self.slowest_compile:.2f} s; {len(self.findings)} findings")


def fuzz_inputs(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """`count` mutated specs, reproducible from `seed`: (seed file name, bytes)."""
    corpus = seeds()
    names, pool = sorted(corpus), list(corpus.values())
    rng = random.Random(seed)
    for _ in range(count):
        name = rng.choice(names)
        yield name, mutate(corpus[name], rng, pool)


def spec_folder(folder: Path) -> Path:
    """Copy the real specs into `folder` (bases for `extends`) and run each once unmutated, so that
    imports and first-call caches are paid before any input is timed; returns `folder`."""
    for name, data in seeds().items():
        (folder / name).write_bytes(data)
    for name, data in seeds().items():
        outcome = check_input(data, Path(name).suffix, folder)
        assert outcome.kind == "model", (name, outcome)
    return folder


def campaign(count: int, seed: int, findings_dir: Path | None = None) -> Tally:
    """Run `count` mutated inputs; every finding's input is kept in `findings_dir` when given."""
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="specc-fuzz-") as tmp:
        folder = spec_folder(Path(tmp))
        for n, (name, data) in enumerate(fuzz_inputs(count, seed)):
            outcome = check_input(data, Path(name).suffix, folder)
            tally.add(outcome, name, data)
            if outcome.kind == "finding" and findings_dir is not None:
                findings_dir.mkdir(parents=True, exist_ok=True)
                (findings_dir / f"finding-{seed}-{n}{Path(name).suffix}").write_bytes(data)
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", type=Path, help="write the tally as JSON here")
    ap.add_argument("--findings", type=Path, help="keep each finding's input in this folder")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    tally = campaign(args.inputs, args.seed, args.findings)
    report = {**tally.as_dict(), "seed": args.seed, "wall_s": round(time.perf_counter() - started, 1)}
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    print(tally.line())
    for f in tally.findings[:20]:
        print(f"  {f['seed']} [{f['stage']}] {f['detail']}")
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
