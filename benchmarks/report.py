"""The results as markdown tables: ratios against `transformers` and the hand-written model."""

from __future__ import annotations

from typing import Any

from benchmarks.alloc_child import BENCHES
from benchmarks.harness import paired_ratio

MiB = 1 << 20


def _ms(t: dict[str, float]) -> str:
    return f"{t['median'] * 1e3:,.1f} ({t['low'] * 1e3:,.1f}–{t['high'] * 1e3:,.1f})"


def speedups(variants: dict[str, Any], baseline: str) -> dict[str, float]:
    """Each variant's speed-up over the fastest variant whose name starts with `baseline`, paired by round."""
    base = [list(v["time"]["samples"]) for k, v in variants.items() if k.startswith(baseline)]
    if not base:
        return {}
    return {name: paired_ratio(base, list(v["time"]["samples"])) for name, v in variants.items()}


def _paired(without: dict[str, Any], with_: dict[str, Any]) -> float:
    return paired_ratio([list(without["time"]["samples"])], list(with_["time"]["samples"]))


def comparison(rows: list[dict[str, Any]], title: str) -> list[str]:
    """One row per (benchmark, variant): median ms (range), tokens/s, speed vs best `transformers` and vs hand-written."""
    out = [f"### {title}", "",
           "| benchmark | variant | ms/step median (min–max) | tokens/s | × transformers (best) | × hand-written | peak MiB | page faults/step |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        variants = r["variants"]
        hf, hand = speedups(variants, "transformers"), speedups(variants, "hand-written")
        for name, v in variants.items():
            t = v["time"]
            peak = f"{v['peak_bytes'] / MiB:,.1f}" if v.get("peak_bytes") is not None else ""
            vs_hand = f"{hand[name]:.2f}" if hand else ""
            out.append(f"| {r['task']} ({r['shape']}) | {name} | {_ms(t)} | {v['tokens_per_s']:,.0f} | "
                       f"{hf[name]:.2f} | {vs_hand} | {peak} | {t['faults']:,.0f} |")
    notes = [f"{r['task']}: first losses agree within {r['loss_rel_diff']:.1e} (relative)" for r in rows if "loss_rel_diff" in r]
    notes += [f"{r['task']}: outputs agree within {r['max_abs_diff']:.1e} (max abs)" for r in rows if "max_abs_diff" in r]
    notes += [f"{r['task']}: same tokens as transformers: {r['same_tokens']}" for r in rows if "same_tokens" in r]
    return out + [""] + [f"- {n}" for n in notes] + [""]


def outside(rows: list[dict[str, Any]]) -> list[str]:
    out = ["### Time outside the model (specc's step)", "", "| benchmark | batch ms | log line ms | step ms | outside share |",
           "|---|---:|---:|---:|---:|"]
    for r in rows:
        o = r["outside"]
        out.append(f"| {r['task']} ({r['shape']}) | {o['data_s'] * 1e3:.2f} | {o['log_s'] * 1e3:.3f} | "
                   f"{o['step_s'] * 1e3:,.1f} | {100 * o['fraction']:.1f} % |")
    return out + [""]


def build(rows: list[dict[str, Any]], front: dict[str, Any] | None) -> list[str]:
    out = ["### Build time (published sizes)", "",
           "| architecture | params | transformers from_config ms | specc spec → module ms | ratio | random fill alone ms "
           "| specc stages ms (parse / validate / graph / modules / init) |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        v = r["variants"]
        hf, ours, fill = (v[k]["time"] for k in ("transformers from_config", "specc spec → module", "random fill alone"))
        st = " / ".join(f"{r['stages'][k] * 1e3:.1f}" for k in ("parse", "validate", "graph", "modules", "init"))
        out.append(f"| {r['spec']} | {r['params']:,} | {_ms(hf)} | {_ms(ours)} | {ours['median'] / hf['median']:.2f} | "
                   f"{_ms(fill)} | {st} |")
    if front:
        cold = (f", {front['cold_s'] * 1e3:.1f} ms cold (the first spec of a fresh process: building the expression "
                "parser included)") if front.get("cold_s") is not None else ""
        out += ["", f"parse + validate + graph of {front['spec']} ({front['layers']} layers): "
                    f"{front['warm']['median'] * 1e3:.1f} ms warm (median){cold}"]
    return out + [""]


def scaling(rows: list[dict[str, Any]]) -> list[str]:
    out = ["### Scaling (specc, causal LM, from the small shape)", "",
           "| dimension | value | params | build ms | step ms median | tokens/s | peak MiB |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['dim']} | {r['value']} | {r['params']:,} | {r['build_s'] * 1e3:,.0f} | {r['step']['median'] * 1e3:,.1f} | "
                   f"{r['tokens_per_s']:,.0f} | {r['peak_bytes'] / MiB:,.1f} |")
    return out + [""]


def levers(data: dict[str, Any], train_rows: list[dict[str, Any]]) -> list[str]:
    out = ["### Levers, each on its own", "", "| lever | measured as | without | with | speed-up |", "|---|---|---:|---:|---:|"]
    for r in train_rows:
        v = r["variants"]
        if "specc, plain CE" in v:
            a, b = v["specc, plain CE"]["time"]["median"], v["specc"]["time"]["median"]
            gain = paired_ratio([list(v["specc, plain CE"]["time"]["samples"])], list(v["specc"]["time"]["samples"]))
            fa, fb = v["specc, plain CE"]["time"]["faults"], v["specc"]["time"]["faults"]
            pa, pb = v["specc, plain CE"].get("peak_bytes"), v["specc"].get("peak_bytes")
            mem = f"; peak {pa / MiB:.0f} → {pb / MiB:.0f} MiB" if pa and pb else ""
            out.append(f"| chunked vocabulary CE | {r['task']} ({r['shape']}) step, faults {fa:,.0f} → {fb:,.0f}{mem} | "
                       f"{a * 1e3:,.1f} ms | {b * 1e3:,.1f} ms | {gain:.2f} |")
    for run in data.get("adamw", []):
        v = run["variants"]
        fused = v["fused"]["time"]["median"]
        for other in ("foreach", "for-loop"):
            t = v[other]["time"]["median"]
            out.append(f"| fused AdamW | optimizer step, {run['params']:,} params, vs {other} | "
                       f"{t * 1e3:,.2f} ms | {fused * 1e3:,.2f} ms | {_paired(v[other], v['fused']):.2f} |")
    if "allocator" in data:
        a, b = data["allocator"]["default"], data["allocator"]["tuned"]
        for bench in BENCHES:
            for name in a[bench]:
                x, y = a[bench][name], b[bench][name]
                out.append(f"| malloc settings (`specc.runtime.train.allocator`) | {bench} ({name}), fresh processes, faults "
                           f"{x['faults']:,.0f} → {y['faults']:,.0f} | {x['s'] * 1e3:,.1f} ms | {y['s'] * 1e3:,.1f} ms | "
                           f"{x['s'] / y['s']:.2f} |")
    if "gelu" in data:
        v = data["gelu"]["variants"]
        base = v["gelu_new (transformers)"]
        for ours, what in (("specc gelu_tanh", "fused kernel"), ("specc gelu_new", "gelu_new's rounding, in place")):
            out.append(f"| GELU: `{ours.split()[1]}` ({what}) | FFN activation forward + backward, vs transformers' "
                       f"composite gelu_new | {base['time']['median'] * 1e3:,.2f} ms | "
                       f"{v[ours]['time']['median'] * 1e3:,.2f} ms | {_paired(base, v[ours]):.2f} |")
    if "checkpointing" in data:
        kept, again = data["checkpointing"]["kept"], data["checkpointing"]["recomputed"]
        out.append(f"| activation checkpointing (`[train] activation_checkpointing = [\"h\"]`) | causal-LM step; peak "
                   f"{kept['peak_bytes'] / 2**20:,.0f} → {again['peak_bytes'] / 2**20:,.0f} MiB | "
                   f"{kept['time']['median'] * 1e3:,.1f} ms | {again['time']['median'] * 1e3:,.1f} ms | "
                   f"{_paired(kept, again):.2f} |")
    if "dropout" in data:
        for name in ("specc", "transformers sdpa"):
            with_p, without = data["dropout"][f"{name} p=0.1"], data["dropout"][f"{name} p=0.0"]
            gain = paired_ratio([list(with_p["samples"])], list(without["samples"]))
            out.append(f"| dropout 0.1 → 0 ({name}) | causal-LM step; p > 0 moves CPU SDPA to its math path | "
                       f"{with_p['median'] * 1e3:,.1f} ms | {without['median'] * 1e3:,.1f} ms | {gain:.2f} |")
    return out + [""]


def as_launched(data: dict[str, Any]) -> list[str]:
    """specc as its commands run it (malloc settings applied) against the others with glibc's defaults."""
    a, b = data["default"], data["tuned"]
    out = ["### As launched: specc with `specc.runtime.train.allocator`, the others with glibc's default malloc", "",
           "Separate processes, one library each, alternated; medians over processes (the in-process tables above give "
           "every variant the same, default allocator).", "",
           "| benchmark | transformers sdpa ms | hand-written ms | specc ms (default malloc) | specc ms (specc.runtime.train.allocator) "
           "| × transformers | × hand-written |", "|---|---:|---:|---:|---:|---:|---:|"]
    for bench in BENCHES:
        hf, hand = a[bench]["transformers sdpa"]["s"], a[bench]["hand-written"]["s"]
        ours, tuned = a[bench]["specc"]["s"], b[bench]["specc"]["s"]
        out.append(f"| {bench} | {hf * 1e3:,.1f} | {hand * 1e3:,.1f} | {ours * 1e3:,.1f} | {tuned * 1e3:,.1f} | "
                   f"{hf / tuned:.2f} | {hand / tuned:.2f} |")
    return out + [""]


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [f"## specc benchmarks ({meta['mode']})", "",
             f"{meta['device']}, torch {meta['torch']}, transformers {meta['transformers']}, {meta['threads']} thread(s), "
             f"fp32; medians of {meta['reps']} interleaved rounds after warm-up; {meta['seconds']:.0f} s in all. "
             "Ratios are speed-ups (above 1: faster than the named baseline), the median over rounds of each round's "
             "ratio, which cancels the machine's drift between rounds; the lever table's in-process rows likewise.", ""]
    if results.get("train"):
        lines += comparison(results["train"], "Training step (forward + loss + backward + clip + fused AdamW)")
        lines += outside(results["train"])
    if results.get("forward"):
        lines += comparison(results["forward"], "Inference forward (eval, full logits)")
    if results.get("generate"):
        lines += comparison(results["generate"], "Greedy generation with KV cache (tokens/s are new tokens)")
    if results.get("build"):
        lines += build(results["build"], results.get("front"))
    if results.get("levers") or any("specc, plain CE" in r["variants"] for r in results.get("train", [])):
        lines += levers(results.get("levers", {}), results.get("train", []))
    if "allocator" in results.get("levers", {}):
        lines += as_launched(results["levers"]["allocator"])
    if results.get("scaling"):
        lines += scaling(results["scaling"])
    return "\n".join(lines)
