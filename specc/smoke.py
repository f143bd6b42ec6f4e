"""Example inputs for any graph, and a quick forward + backward check."""

from __future__ import annotations

import time

import torch

from specc.compiler import compile_model
from specc.graph import LayerGraph


def example_inputs(graph: LayerGraph, batch: int = 2, seq: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs matching the graph's declared types: token ids below each reader's vocab,
    padding masks with a few trailing zeros, and `select` masks with a few true positions."""
    gen = torch.Generator().manual_seed(seed)
    roles = _roles(graph)
    inputs: dict[str, torch.Tensor] = {}
    for name, ttype in graph.inputs.items():
        dims = tuple(batch if d == "batch" else seq if isinstance(d, str) else d for d in ttype.dims)
        role, high = roles.get(name, ("ids", 2))
        if role == "mask":
            t = torch.ones(dims, dtype=torch.long)
            if len(dims) == 2 and dims[1] > 2:
                t[-1, -2:] = 0  # pad the last row's tail
            inputs[name] = t if ttype.dtype == "int" else t.bool()
        elif ttype.dtype == "bool":
            inputs[name] = torch.rand(dims, generator=gen) < 0.3
            inputs[name].view(-1)[0] = True
        elif ttype.dtype == "float":
            inputs[name] = torch.randn(dims, generator=gen)
        else:
            inputs[name] = torch.randint(0, high, dims, generator=gen)
    return inputs


def _roles(graph: LayerGraph) -> dict[str, tuple[str, int]]:
    roles: dict[str, tuple[str, int]] = {}
    for node in graph.nodes.values():
        for slot, src in node.inputs.items():
            if src not in graph.inputs:
                continue
            if slot == "mask":
                roles[src] = ("mask", 2)
            elif node.op == "embedding":
                vocab = getattr(node.params, "vocab")
                roles[src] = ("ids", min(vocab, roles.get(src, ("ids", vocab))[1]))
    return roles


def smoke_run(graph: LayerGraph, batch: int = 2, seq: int = 16) -> str:
    """Compile `graph`, run one forward and backward on CPU; a short report (raises on failure)."""
    start = time.perf_counter()
    model = compile_model(graph)
    built = time.perf_counter() - start
    outputs = model(**example_inputs(graph, batch, seq))
    loss = sum(v.float().pow(2).mean() for v in outputs.values() if v is not None and v.is_floating_point())
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not all(torch.isfinite(g).all() for g in grads):
        raise RuntimeError("non-finite gradients in smoke run")
    total = sum(p.numel() for p in model.parameters())
    lines = [f"{name}: {list(v.shape)}" for name, v in outputs.items() if v is not None]
    lines.append(f"{total:,} parameters, {len(grads)} tensors got gradients, "
                 f"build {built:.2f} s, forward+backward {time.perf_counter() - start - built:.2f} s")
    return "\n".join(lines)
