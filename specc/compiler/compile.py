"""compile_model: `LayerGraph` → `SpecModel` (an `nn.Module`).

Modules are built on the meta device, materialised with `to_empty`, tied, and
then every parameter is initialised once from the spec's seed, so a full-size
build costs about as much as filling its parameters with random numbers.
"""

from __future__ import annotations

import torch
from torch import nn

from specc.compiler.adapt import attach, initialize_adapters
from specc.compiler.memory import fits, room
from specc.compiler.modules import BlockModule, Repeat, SpecModel, Step
from specc.diagnostics import Diagnostic, Span, SpecError
from specc.graph import BlockInstance, LayerGraph, Node
from specc.ops.attention import Attention
from specc.ops.layers import Initialisable, release
from specc.tensorcheck import TOO_LARGE_HINT, past_tensor_limit


def compile_model(graph: LayerGraph, device: str | torch.device | None = None, init: bool = True) -> SpecModel:
    """Build the module tree of `graph` on `device` (default CPU), initialised from the spec's seed."""
    try:
        with torch.device("meta"):
            model = _build(graph)
            attach(model, graph)
    except (RuntimeError, TypeError) as err:
        if not past_tensor_limit(err):
            raise
        raise SpecError([Diagnostic("E050", "a parameter of the model has more elements than a tensor can hold "
                                    "(2**63)", Span(graph.spec.raw.file), TOO_LARGE_HINT)]) from None
    target = torch.device(device or "cpu")
    # Counted on the meta device, before anything is allocated: a model too large for the machine is refused
    # here, not found out by allocating gigabytes (and the handler below needs no memory to report it).
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if target.type != "meta" and not fits(size, target):
        raise _too_big(graph, size, target)
    try:
        model.to_empty(device=target)
    except (RuntimeError, MemoryError) as err:  # torch reports a failed allocation as a RuntimeError
        text = str(err).lower()
        if not (isinstance(err, MemoryError) or "alloc" in text or "out of memory" in text):
            raise
        raise _too_big(graph, size, target) from None
    _tie(model, graph)
    if init:
        initialize(model, graph)
        initialize_adapters(model, graph.spec.seed)
    return model


def _too_big(graph: LayerGraph, size: int, device: torch.device) -> SpecError:
    limit = room(device)
    has = f"; {limit / 2**30:,.1f} GiB there" if limit is not None and size > limit else \
        "; that much address space is not left (ulimit -v)" if device.type == "cpu" else ""
    return SpecError([Diagnostic("E050", f"cannot allocate the model's parameters ({size / 2**30:,.1f} GiB) on {device}{has}",
                                 Span(graph.spec.raw.file),
                                 "check the sizes in [params]; `specc summary` counts parameters without allocating")])


def initialize(model: SpecModel, graph: LayerGraph) -> None:
    """Fill every parameter per the spec's init (normal std, ones/zeros for norms), each tensor once."""
    gen = torch.Generator(device=next(model.parameters()).device if any(True for _ in model.parameters()) else "cpu")
    gen.manual_seed(graph.spec.seed)
    for node in graph.nodes.values():
        module = model.get_submodule(node.name)
        if isinstance(module, Initialisable):
            module.initialize(graph.spec.init_std, gen)
    for p in model.parameters():
        release(p)


def _build(graph: LayerGraph) -> SpecModel:
    required = [k for k, t in graph.inputs.items() if not t.optional]
    model = SpecModel(list(graph.inputs), required)
    slots = {name: i for i, name in enumerate(graph.inputs)}
    for group in graph.groups:
        if group.kind == "op":
            assert group.node is not None
            module = _op_module(group.node)
            args = _args(group.node, slots)
            uses_cache = group.node.record.uses_cache
        else:
            module = _block_group(group.instances) if group.kind == "block" else Repeat(_block_group(i) for i in group.instances)
            args = tuple(slots[s] for s in group.instances[0].inputs)
            uses_cache = True
        setattr(model, group.name, module)
        slots[group.output] = len(slots)
        if group.kind != "op":
            slots[group.name] = slots[group.output]
        deps = _input_deps(graph, group.output)
        model._steps.append(Step(module, args, slots[group.output], uses_cache, group.name, group.span, deps))
    model._n_slots = max(slots.values()) + 1
    model._output_slots = {name: slots[src] for name, src in graph.outputs.items()}
    model._defer_heads()
    return model


def _input_deps(graph: LayerGraph, node: str) -> frozenset[str]:
    import networkx as nx

    return frozenset(a for a in nx.ancestors(graph.graph, node) if a in graph.inputs)


def _block_group(instance: BlockInstance | list[BlockInstance]) -> BlockModule:
    inst = instance[0] if isinstance(instance, list) else instance
    slots = {src: i for i, src in enumerate(inst.inputs)}
    block = BlockModule(len(inst.inputs), 0, 0)
    for node in inst.nodes:
        module = _op_module(node)
        setattr(block, node.name.rsplit(".", 1)[-1], module)
        args = _args(node, slots)
        slots[node.name] = len(slots)
        block._steps.append(Step(module, args, slots[node.name], node.record.uses_cache, node.name, node.span))
    block._n_slots, block._out = len(slots), slots[inst.output]
    return block


def _args(node: Node, slots: dict[str, int]) -> tuple[int, ...]:
    return tuple(slots[node.inputs[i.name]] if i.name in node.inputs else -1 for i in node.record.inputs)


def _op_module(node: Node) -> nn.Module:
    module = node.record.build(node.params)
    kind = node.record.no_decay_kind()
    if kind is not None:  # what the optimizer reads (`no_decay`); the runtime never looks at op classes
        setattr(module, "no_decay_kind", kind)  # a plain attribute, not a parameter or submodule
    if isinstance(module, Attention):
        module.cache_key = node.name
    return module


def _tie(model: SpecModel, graph: LayerGraph) -> None:
    for node in graph.nodes.values():
        for own, target in node.ties.items():
            owner, _, pname = target.rpartition(".")
            shared = model.get_submodule(owner).get_parameter(pname)
            holder_path, _, attr = f"{node.name}.{own}".rpartition(".")
            setattr(model.get_submodule(holder_path), attr, shared)

