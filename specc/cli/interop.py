"""Hugging Face verbs: import-hf (config + weights → spec + checkpoint), export-hf (run → HF directory)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from specc.atomic import atomic_dir, write_text
from specc.cli.common import add_checkpoint_args
from specc.diagnostics import UserError

# Config fields export-hf carries over from an imported checkpoint's original config (token ids, not architecture).
_CARRIED = ("bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
            "forced_bos_token_id", "forced_eos_token_id")


def register(sub: Any) -> None:
    p = sub.add_parser("import-hf", help="a Hugging Face model directory as a spec (+ its weights as a checkpoint)")
    p.add_argument("source", metavar="HF_DIR", help="folder with config.json (+ model.safetensors, tokenizer.json)")
    p.add_argument("-o", "--out", required=True, metavar="SPEC", help="spec file to write: .toml, or .spec for the DSL")
    p.add_argument("--architecture", metavar="CLASS", help="transformers class to import (default: the config's)")
    p.add_argument("--checkpoint", metavar="DIR", help="checkpoint folder for the weights (default: SPEC without its suffix)")
    p.add_argument("--no-weights", action="store_true", help="write the spec only")
    p.add_argument("--allow-unknown", action="append", default=[], metavar="FIELD",
                   help="proceed although the config has FIELD, which specc does not know (repeatable)")
    p.add_argument("--skip", action="append", default=[], metavar="PREFIX",
                   help="leave checkpoint tensors under PREFIX out on purpose, e.g. a task head 'classifier.'")
    p.add_argument("--force", action="store_true", help="replace an existing spec file or checkpoint folder")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser("export-hf", help="a run's chosen checkpoint as a Hugging Face directory (from_pretrained loads "
                                         "it); a fine-tuned run as its task class")
    p.add_argument("run", metavar="RUN", help="run folder or checkpoint folder")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    add_checkpoint_args(p)
    p.set_defaults(handler=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    from specc.runtime.runs.interop import save_imported
    from specc.frontend.formats import FORMATS, convert_text
    from specc.hf import WeightMapError, load_pretrained

    source, out = Path(args.source), Path(args.out)
    if out.suffix not in FORMATS:
        raise UserError(f"-o {out}: the spec file name must end in {' or '.join(FORMATS)} (TOML or the DSL)")
    ckpt = Path(args.checkpoint) if args.checkpoint else out.with_suffix("")
    for path in (out, ckpt) if not args.no_weights else (out,):
        if path.exists() and not args.force:
            raise UserError(f"{path} already exists; pass --force to replace it")
    try:
        pre = load_pretrained(source, args.architecture, args.allow_unknown, args.skip, weights=not args.no_weights)
    except WeightMapError as err:
        raise UserError(f"{err}\n(pass --skip PREFIX to leave a task head's tensors out on purpose)") from None
    imp = pre.imported
    text = imp.text if out.suffix == ".toml" else convert_text(imp.text, "imported.toml", out.suffix)
    loaded = not args.no_weights and _has_weights(source)
    if loaded:  # the checkpoint first, the spec that names it after: a failure leaves neither half-made
        save_imported(ckpt, imp.graph, pre.model, source, imp.hf_class.name, force=args.force)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, text)
    count = sum(p.numel() for p in pre.model.parameters())
    print(f"specc import-hf: {source} ({imp.hf_class.name}) → {out}")
    print(f"  spec: the structure of specs/{imp.template}, {count:,} parameters")
    if loaded:
        tok = "with its tokenizer.json" if (source / "tokenizer.json").is_file() else "no tokenizer.json in the source"
        print(f"  weights: → {ckpt} (a step-0 checkpoint; {tok})")
    elif not args.no_weights:
        print(f"  weights: none in {source}; wrote the spec only")
    if imp.ignored:
        print(f"  not architecture, left out: {', '.join(sorted(imp.ignored))}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from specc.runtime.runs.interop import source_config
    from specc.hf import write_hf_dir

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise UserError(f"{out} already exists and is not empty; pass --force to replace it")
    exported, ckpt, tokenizer = _exported(Path(args.run), args.step, args.last)
    origin = source_config(ckpt)
    for key in _CARRIED:  # token ids an imported checkpoint's config had, unless the architecture fixes them
        if origin.get(key) is not None and key not in exported.config:
            exported.config[key] = origin[key]
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out, replace=True) as tmp:  # whole or not at all; an old export is replaced only by a complete one
        files = write_hf_dir(tmp, exported, tokenizer)
    print(f"specc export-hf: {ckpt} → {out} as {exported.hf_class.name} (model_type {exported.family.model_type})")
    print(f"  wrote {', '.join(f.name for f in files)}")
    return 0


def _exported(run: Path, step: int | None, last: bool) -> tuple[Any, Path, Any]:
    """The export of a run's chosen checkpoint, its checkpoint and tokenizer: of its task head for a fine-tuned
    run (LoRA merged; the tokenizer frames inputs as the task's runner does), else of the whole spec."""
    from specc.hf import TaskHead, export_model, export_task_model
    from specc.runtime.runs import checkpoint
    from specc.runtime.runs.interop import checkpoint_tokenizer, load_checkpoint_model
    from specc.runtime.tasks import TASK_FILE
    from specc.runtime.train.finetune import load_task_run

    if run.exists() and (checkpoint.chosen(run, step, last) / TASK_FILE).is_file():
        from specc.compiler.adapt import merge

        task = load_task_run(run, "cpu", step, last)
        if task.setup.graph.adapters is not None:
            merge(task.model)
        labels = getattr(task.runner, "labels", None)
        head = TaskHead(task.setup.task.type.name, task.setup.task.params.head, list(labels) if labels else None)
        exported = export_task_model(task.setup.graph, task.model.eval(), head)
        tokenizer = checkpoint_tokenizer(task.ckpt)
        if tokenizer is not None and head.kind != "lm":  # classification, tagging and QA read [CLS] A [SEP] (B [SEP])
            specials = task.runner.tok.specials
            tokenizer = tokenizer.with_cls_sep(specials.cls, specials.sep, "segments" in task.setup.graph.inputs)
        return exported, task.ckpt, tokenizer
    graph, model, ckpt = load_checkpoint_model(run, step, last)
    return export_model(graph, model), ckpt, checkpoint_tokenizer(ckpt)


def _has_weights(source: Path) -> bool:
    from specc.hf.files import weight_files

    return bool(weight_files(source))
