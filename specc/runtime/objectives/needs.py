"""What an objective needs from the graph, and the line to add when the model lacks it (E061).

An objective names the graph inputs it feeds and the outputs it reads
(`ObjectiveRecord.inputs` / `outputs`); `optional_inputs` are fed only when the
model declares them (MLM fills `segments` for a model with segment embeddings,
and needs none without). A missing name is reported with the exact line to add,
in the spec's own format.
"""

from __future__ import annotations

from typing import Any

from specc.diagnostics import Diagnostic, Span, did_you_mean
from specc.graph import LayerGraph

# How the reference specs declare the inputs objectives feed (a trailing `?`: the model runs without it),
# and where the graph uses each.
INPUT_TYPES = {
    "tokens": ("int[batch, seq]", "the token embedding's input"),
    "segments": ("int[batch, seq]", "a segment embedding's input"),
    "attention_mask": ("int[batch, seq]?", "the attention nodes' mask"),
    "mlm_select": ("bool[batch, seq]?", "the MLM head's select input"),
    "src": ("int[batch, src_seq]", "the encoder's token embedding's input"),
    "src_mask": ("int[batch, src_seq]?", "the encoder's attention mask and the cross-attention's mask"),
    "tgt": ("int[batch, tgt_seq]", "the decoder's token embedding's input"),
    "tgt_mask": ("int[batch, tgt_seq]?", "the decoder's self-attention mask"),
}
# The ops whose node an output is usually read from, most likely first.
OUTPUT_OPS = {"logits": ("lm_head",), "mlm_logits": ("mlm_head", "lm_head"), "nsp_logits": ("classification_head",)}


def missing_from_graph(record: Any, graph: LayerGraph, span: Span | None, file: str) -> list[Diagnostic]:
    """E061 for each required input the model does not declare and each output it does not name."""
    dsl = file.endswith(".spec")
    out = []
    for name in record.inputs:
        if name not in graph.inputs:
            out.append(Diagnostic("E061", f"objective '{record.name}' feeds model input '{name}', which the model does "
                                  "not declare", span, did_you_mean(name, graph.inputs) or input_hint(name, dsl)))
    for name in record.outputs:
        if name not in graph.outputs:
            out.append(Diagnostic("E061", f"objective '{record.name}' reads model output '{name}', which the model does "
                                  "not declare", span, did_you_mean(name, graph.outputs) or output_hint(name, graph, dsl)))
    return out


def input_hint(name: str, dsl: bool) -> str:
    kind, use = INPUT_TYPES.get(name, ("int[batch, seq]", "the node that reads it"))
    line = f"input {name}: {kind}" if dsl else f'{name} = "{kind}"'
    return f"add to {'model { ... }' if dsl else '[model.inputs]'}: `{line}`, and make it {use}"


def output_hint(name: str, graph: LayerGraph, dsl: bool) -> str:
    ops = OUTPUT_OPS.get(name, ())
    node = next((n.name for op in ops for n in graph.nodes.values() if n.op == op and "." not in n.name), None)
    if node is None:
        head = ops[0] if ops else "a head"
        return (f"add a {head} node (see `specc ops {head}`) and name it as output '{name}'" if ops else
                f"name the node that computes it as output '{name}'")
    if dsl:
        return f"add to model {{ ... }}: `output {name} = {node}`"
    return f'add to [model.outputs]: `{name} = "{node}"`'
