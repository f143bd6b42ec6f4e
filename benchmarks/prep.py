"""Data preparation at size: `python -m benchmarks.prep --size 100M --size 1G`.

For each size, on a generated corpus (JSONL files of documents recombined from sentences of
CPython's documentation and the standard library's docstrings, so the text is real-ish and
never one line repeated):

- preparation throughput (`specc.runtime.data.prepare`: read, split, encode, shard, write) as a
  ratio to the raw `tokenizers` ceiling on the same documents with the same cores: the same
  tokenizer's `encode_batch` (and `encode_batch_fast`, which preparation uses) over the texts
  already in memory, nothing read or written;
- peak resident memory of the preparation (a fresh process each; flat means independent of size);
- training tokens/s of gpt-tiny reading its batches from the prepared shards against the same
  steps on one pre-built in-memory batch (interleaved rounds, medians).

Each measurement runs in a child process of its own. The tokenizer is trained once, on the
first `--sample` bytes of the corpus (the same for every size). Results go to
benchmarks/results/prep.json and prep.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

RESULTS = Path(__file__).resolve().parent / "results"
SPEC = Path(__file__).resolve().parent.parent / "specs" / "gpt-tiny.toml"
FILE_BYTES = 64 << 20  # per generated JSONL file
CHUNK_CHARS = 8 << 20  # text the ceiling encodes per encode_batch call (its Encodings must fit in memory)
BATCH_CHARS = 1 << 20  # and per call in the ceiling's own batches, as preparation batches them


# -- the corpus ------------------------------------------------------------------------------------------


def sentences() -> list[str]:
    """Distinct sentences of the Python docs topics and the standard library's docstrings."""
    import importlib
    import inspect
    import pkgutil
    from pydoc_data.topics import topics

    texts = list(topics.values())
    for mod in sorted(m.name for m in pkgutil.iter_modules() if not m.name.startswith("_")):
        if mod in {"antigravity", "this", "idlelib", "turtledemo", "tkinter", "test"}:
            continue
        try:
            module = importlib.import_module(mod)
        except Exception:  # noqa: BLE001  # a module that needs a display or an optional library: not text we need
            continue
        texts.append(inspect.getdoc(module) or "")
        for _, obj in inspect.getmembers(module):
            if inspect.isclass(obj) or inspect.isfunction(obj):
                texts.append(inspect.getdoc(obj) or "")
    pool = {s.strip() for t in texts for s in re.split(r"(?<=[.!?])\s+", " ".join(t.split())) if 20 <= len(s.strip()) <= 400}
    return sorted(pool)


def generate(folder: Path, size: int, pool: list[str], seed: int = 0) -> Path:
    """JSONL files of documents, each a title line and 1-6 paragraphs of 2-8 sentences drawn from `pool`,
    until `size` bytes; file k depends only on (seed, k), so a larger corpus begins as a smaller one does."""
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    written, k = 0, 0
    while written < size:
        rng = random.Random(seed * 1_000_003 + k)
        path = folder / f"part-{k:04d}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            n = 0
            while n < min(FILE_BYTES, size - written):
                title = " ".join(rng.choice(pool).split()[: rng.randint(2, 6)]).rstrip(".,:;")
                paras = ["\n".join([title, "=" * len(title)])]
                for _ in range(rng.randint(1, 6)):
                    paras.append(" ".join(rng.choices(pool, k=rng.randint(2, 8))))
                line = json.dumps({"text": "\n\n".join(paras)}) + "\n"
                fh.write(line)
                n += len(line.encode())
        written += n
        k += 1
    done.write_text(str(written))
    return folder


# -- children: one measurement per process ------------------------------------------------------------------


def _corpus(folder: Path) -> Any:
    from specc.runtime.config import DataConfig
    from specc.runtime.data.corpus import Corpus

    return Corpus(DataConfig(source="jsonl", path=str(folder)), folder)


def child_sentences(out: Path) -> dict[str, Any]:
    """The sentence pool, written to `out` (importing the whole standard library is a process of its own)."""
    pool = sentences()
    out.write_text(json.dumps(pool))
    return {"sentences": len(pool)}


def child_tokenizer(folder: Path, out: Path, sample: int, vocab: int) -> dict[str, Any]:
    from specc.runtime.config import TokenizerConfig
    from specc.runtime.data.tokenizer import build_tokenizer

    corpus = _corpus(folder)
    t0 = time.perf_counter()
    tok = build_tokenizer(TokenizerConfig(vocab_size=vocab, sample_bytes=sample), corpus.documents("train"), corpus.fingerprint())
    tok.save(out)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mib": _peak_mib()}


def child_prepare(folder: Path, tok_file: Path) -> dict[str, Any]:
    from specc.runtime.data.prepare import prepare
    from specc.runtime.data.tokenizer import TextTokenizer

    tok = TextTokenizer.load(tok_file)
    t0 = time.perf_counter()
    report = prepare(_corpus(folder), tok, quiet=False).report  # its progress bar goes to the runner's stderr
    seconds = time.perf_counter() - t0
    assert report is not None, "the benchmark needs a fresh cache"
    m = report.manifest
    return {"seconds": seconds, "stored_bytes": m.stored_bytes, "tokens": m.tokens["train"] + m.tokens["val"],
            "docs": m.docs["train"] + m.docs["val"], "shards": m.shards, "peak_rss_mib": _peak_mib()}


def child_ceiling(folder: Path, tok_file: Path, limit: int | None) -> dict[str, Any]:
    """encode_batch and encode_batch_fast over the corpus's documents, read into memory a chunk at a time
    (reading untimed), in batches of `BATCH_CHARS` as preparation makes them; alternating which goes first."""
    from specc.runtime.data.tokenizer import TextTokenizer

    tok = TextTokenizer.load(tok_file).tok
    timed = {"encode_batch": 0.0, "encode_batch_fast": 0.0}
    tokens, text_bytes = 0, 0
    for k, chunk in enumerate(_chunks(_corpus(folder), limit)):
        order = ["encode_batch", "encode_batch_fast"][:: 1 if k % 2 == 0 else -1]
        for name in order:
            fn = getattr(tok, name)
            t0 = time.perf_counter()
            for batch in chunk:
                encoded = fn(batch, add_special_tokens=False)
            timed[name] += time.perf_counter() - t0
            del encoded
        tokens += sum(len(e.ids) for b in chunk for e in tok.encode_batch_fast(b, add_special_tokens=False))  # untimed
        text_bytes += sum(len(t.encode()) for b in chunk for t in b)
    return {**{f"{k}_seconds": v for k, v in timed.items()}, "text_bytes": text_bytes, "tokens": tokens}


def _chunks(corpus: Any, limit: int | None) -> Iterator[list[list[str]]]:
    chunk: list[list[str]] = []
    batch: list[str] = []
    size = total = 0
    for doc in corpus.stream():
        batch.append(doc.text)
        size += len(doc.text)
        if size >= BATCH_CHARS:
            chunk.append(batch)
            total += size
            batch, size = [], 0
            if sum(len(t) for b in chunk for t in b) >= CHUNK_CHARS:
                yield chunk
                chunk = []
            if limit is not None and total >= limit:
                break
    if batch:
        chunk.append(batch)
    if chunk:
        yield chunk


def child_train(folder: Path, tok_file: Path, steps: int, rounds: int) -> dict[str, Any]:
    """gpt-tiny's training step, batches read from the prepared shards vs one pre-built in-memory batch."""
    import torch

    from specc.compiler import compile_model
    from specc.runtime.train.optim import make_optimizer
    from specc.runtime.data.prepare import prepare
    from specc.runtime.train.session import plan_from_spec
    from specc.runtime.data.tokenizer import TextTokenizer
    from specc.runtime.train.workload import Pretraining

    torch.manual_seed(0)
    tok = TextTokenizer.load(tok_file)
    plan = plan_from_spec(SPEC)
    cfg = plan.config.train
    stores = prepare(_corpus(folder), tok, quiet=True)
    work = Pretraining(plan.objectives, tok, stores.train, stores.val, cfg)
    model = compile_model(plan.graph, "cpu")
    optimizer = make_optimizer(model, cfg)
    fixed = work.batch(0, cfg.batch_size)
    position = [0]

    def step(batch: Any) -> None:
        from specc.runtime.objectives import LossSums

        loss = work.loss(model(**batch.inputs), batch, LossSums())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    batch_seconds: list[float] = []

    def loaded() -> None:
        for _ in range(steps):
            t0 = time.perf_counter()
            batch = work.batch(position[0], cfg.batch_size)  # windows anywhere in the shards, as training reads them
            batch_seconds.append(time.perf_counter() - t0)
            step(batch)
            position[0] += cfg.batch_size

    def in_memory() -> None:
        for _ in range(steps):
            step(fixed)

    variants = {"loaded": loaded, "in_memory": in_memory}
    loaded()  # warm-up
    in_memory()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            t0 = time.perf_counter()
            variants[name]()
            times[name].append((time.perf_counter() - t0) / steps)
    tokens = cfg.batch_size * cfg.seq_len
    out = {f"{k}_tokens_s": tokens / statistics.median(v) for k, v in times.items()}
    out["round_ratios"] = [b / a for a, b in zip(times["loaded"], times["in_memory"])]  # each round times both
    out["ratio"] = statistics.median(out["round_ratios"])
    # what reading costs directly: the noise between rounds is larger than the difference the ratio looks for
    out["batch_ms_median"] = statistics.median(batch_seconds) * 1e3
    out["batch_share"] = statistics.median(batch_seconds) / statistics.median(times["loaded"])
    out.update(steps=steps, rounds=rounds, train_tokens=len(stores.train), torch_threads=torch.get_num_threads())
    return out


def _peak_mib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss, which Linux carries over an
    exec from the parent that forked (the runner's own peak would show as every child's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB; not Linux: no /proc


def _child(kind: str, *args: str, cache: Path | None = None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    if cache is not None:
        env["SPECC_CACHE"] = str(cache)
    done = subprocess.run([sys.executable, "-m", "benchmarks.prep", "--child", kind, *args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE if kind != "prepare" else None, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- the run ---------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def _say(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


PHASES = ("prepare", "ceiling", "train")


def run(sizes: list[str], work: Path, sample: int, vocab: int, steps: int, rounds: int, ceiling_limit: int | None,
        out: Path, say: Any = _say, phases: tuple[str, ...] = PHASES, keep_caches: bool = False) -> dict[str, Any]:
    """Each size in turn: preparation, the ceiling, the training steps; results are rewritten after each
    measurement, so a long run that is stopped keeps what it measured.

    A run without "prepare" keeps the prepared stores that an earlier `--keep-caches` run left (the training
    child prepares whatever is missing, untimed): a long preparation can run while the machine is busy and the
    training rounds, which need a quiet machine, later."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "sentences.json").exists():
        _child("sentences", str(work / "sentences.json"))
    pool = json.loads((work / "sentences.json").read_text())
    say(f"{len(pool):,} distinct sentences")
    tok_file = work / "tokenizer.json"
    results: dict[str, Any] = {"sizes": {size: {} for size in sizes}, "cores": os.cpu_count(), "load_before": os.getloadavg()}
    folders = {size: generate(work / f"corpus-{size}", parse_size(size), pool) for size in sizes}
    if not tok_file.exists():
        results["tokenizer"] = _child("tokenizer", str(folders[sizes[0]]), str(tok_file), str(sample), str(vocab),
                                      cache=work / "tok-cache")
        say(f"tokenizer: {results['tokenizer']}")
    if "prepare" in phases:  # a timed preparation starts from an empty cache
        for size in sizes:
            subprocess.run(["rm", "-rf", str(work / f"cache-{size}")], check=True)
    for size in sizes:  # a size's figures are complete before the next, larger one starts
        row, cache, folder = results["sizes"][size], work / f"cache-{size}", str(folders[size])
        for phase in (p for p in PHASES if p in phases):
            if phase == "prepare":
                row["prepare"] = _child("prepare", folder, str(tok_file), cache=cache)
            elif phase == "ceiling":
                row["ceiling"] = _child("ceiling", folder, str(tok_file), str(ceiling_limit or 0))
            else:
                row["train"] = _child("train", folder, str(tok_file), str(steps), str(rounds), cache=cache)
            row[f"load_after_{phase}"] = os.getloadavg()
            say(f"{size} {phase}: {row[phase]}")
            _write(results, out)
    if not keep_caches:
        for size in sizes:
            subprocess.run(["rm", "-rf", str(work / f"cache-{size}")], check=True)
    return results


def _write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "prep.json").write_text(json.dumps(results, indent=1))
    (out / "prep.md").write_text(report(results) + "\n")


def ratios(row: dict[str, Any]) -> dict[str, float]:
    """Preparation against the ceiling in tokens/s of document text (the same text, or the ceiling's prefix of
    it: the generated text is uniform throughout). Preparation's tokens less its one separator per document."""
    prep, ceil = row["prepare"], row["ceiling"]
    prep_rate = (prep["tokens"] - prep["docs"]) / prep["seconds"]
    return {f"vs_{name}": prep_rate / (ceil["tokens"] / ceil[f"{name}_seconds"]) for name in ("encode_batch", "encode_batch_fast")}


def _prepare_cells(row: dict[str, Any]) -> list[str]:
    if "prepare" not in row:
        return [""] * 7
    p = row["prepare"]
    return [f"{p['docs']:,}", f"{p['tokens']:,}", f"{p['shards']}", f"{p['seconds']:.1f}",
            f"{p['stored_bytes'] / 1e6 / p['seconds']:.2f}", f"{p['tokens'] / p['seconds']:,.0f}", f"{p['peak_rss_mib']:.0f}"]


def _ceiling_cells(row: dict[str, Any]) -> list[str]:
    if "ceiling" not in row or "prepare" not in row:  # a ratio needs both sides
        return ["", ""]
    r = ratios(row)
    return [f"{r['vs_encode_batch']:.2f}", f"{r['vs_encode_batch_fast']:.2f}"]


def _train_cells(row: dict[str, Any]) -> list[str]:
    if "train" not in row:
        return ["", "", ""]
    t = row["train"]
    spread = f" ({min(t['round_ratios']):.3f}–{max(t['round_ratios']):.3f})" if t.get("round_ratios") else ""
    return [f"{t['loaded_tokens_s']:,.0f}", f"{t['in_memory_tokens_s']:,.0f}", f"{t['ratio']:.3f}{spread}"]


def report(results: dict[str, Any]) -> str:
    lines = ["| corpus | documents | tokens | shards | prepare s | MB/s (stored) | tokens/s | peak RSS MiB | "
             "× encode_batch | × encode_batch_fast | train tokens/s (shards) | (in memory) | ratio, median (min–max) of rounds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for size, row in results["sizes"].items():
        if not row.keys() & set(PHASES):
            continue
        lines.append(f"| {size} | " + " | ".join(_prepare_cells(row) + _ceiling_cells(row) + _train_cells(row)) + " |")
        if "batch_ms_median" in row.get("train", {}):
            t = row["train"]
            notes.append(f"- {size}: building a batch from the shards took {t['batch_ms_median']:.2f} ms (median), "
                         f"{100 * t['batch_share']:.2f} % of a step")
        if "ceiling" in row:
            c = row["ceiling"]
            notes.append(f"- {size}: the ceiling encoded {c['text_bytes'] / 1e6:.0f} MB of document text: encode_batch "
                         f"{c['encode_batch_seconds']:.1f} s, encode_batch_fast {c['encode_batch_fast_seconds']:.1f} s")
    tok = results.get("tokenizer")
    if tok:
        notes.append(f"- tokenizer (byte-level BPE, trained once on the corpus's first bytes): {tok['seconds']:.1f} s, "
                     f"peak RSS {tok['peak_rss_mib']:.0f} MiB")
    loads = [f"{size} {k[len('load_after_'):]} {tuple(round(x, 1) for x in v)}"
             for size, row in results["sizes"].items() for k, v in row.items() if k.startswith("load_after_")]
    notes.append(f"- load average (1, 5, 15 min) before: {tuple(round(x, 1) for x in results['load_before'])}; after: "
                 + "; ".join(loads))
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", action="append", help="corpus size, e.g. 100M or 1G (repeatable; default 100M)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/specc-prep-bench"), help="corpora, tokenizer and caches")
    ap.add_argument("--sample", type=parse_size, default="20M", help="tokenizer training sample (default 20M)")
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=5, help="training steps per round")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--ceiling-limit", type=parse_size, default=None,
                    help="measure the ceiling on the first N bytes of each corpus's text only (it is uniform throughout)")
    ap.add_argument("--phase", action="append", choices=PHASES,
                    help="measure only this phase (repeatable; default all three)")
    ap.add_argument("--keep-caches", action="store_true",
                    help="keep the prepared stores for a later run (e.g. `--phase train` on a quiet machine)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        found = {"sentences": lambda: child_sentences(Path(rest[0])),
                 "tokenizer": lambda: child_tokenizer(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3])),
                 "prepare": lambda: child_prepare(Path(rest[0]), Path(rest[1])),
                 "ceiling": lambda: child_ceiling(Path(rest[0]), Path(rest[1]), int(rest[2]) or None),
                 "train": lambda: child_train(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3]))}[kind]()
        print(json.dumps(found))
        return 0
    results = run(args.size or ["100M"], args.work, args.sample, args.vocab, args.steps, args.rounds, args.ceiling_limit,
                  args.out, phases=tuple(args.phase or PHASES), keep_caches=args.keep_caches)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
