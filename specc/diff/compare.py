"""diff_graphs: two layer graphs → a `SpecDiff`.

Top-level entries match by name; the instances of a repeated block are aligned
(`specc.diff.align`), and a change shared by a run of layers is reported once
(``h.{0–11}.mlp: d_ff 3072 → 4096``).
"""

from __future__ import annotations

from typing import Any, Mapping, cast

from specc.canonical import architecture_hash, canonical_data, section_hashes
from specc.diff.align import align, collapse, group_outputs, instance_signatures, instance_view, local_signature, offset_runs
from specc.diff.headline import headline
from specc.diff.types import Compat, GroupDelta, NodeChange, SpecDiff, Status, ValueChange
from specc.diff.weights import compat_table
from specc.graph import Group, LayerGraph, Node
from specc.schema.model import RUNTIME_SECTIONS
from specc.summary import _default_context as default_context

_ChangeKey = tuple[str, str, tuple[str, ...], str | None]


def diff_graphs(a: LayerGraph, b: LayerGraph, old_label: str = "A", new_label: str = "B",
                context: int | None = None, compat: Compat | None = None) -> SpecDiff:
    """Everything that differs between A and B, and how a checkpoint of A fares in B.

    `compat` replaces the default table (A's parameters into B's by name), e.g.
    with a checkpoint's real tensors or declared layer mappings.
    """
    ctx = context or default_context(b)
    groups, raw_changes, suggested = _compare_groups(a, b, ctx)
    nodes = [NodeChange(name, cast(Status, status), op, list(details), at, count)
             for name, (status, op, details, at), count in collapse(raw_changes)]
    if compat is None:
        compat = compat_table(a.parameter_names(), b.parameter_names(), source_label=old_label, target_label=new_label)
    if compat.source == old_label and not compat.mapping:
        compat.suggested = suggested
    old_sections, new_sections = section_hashes(a.spec), section_hashes(b.spec)
    out = SpecDiff(
        old=old_label, new=new_label, old_hash=architecture_hash(a), new_hash=architecture_hash(b), context=ctx,
        headline=[], params=_params(a, b), model=_model(a, b), groups=groups, nodes=nodes,
        sections=_sections(a, b),
        section_hashes={k: [old_sections.get(k), new_sections.get(k)] for k in RUNTIME_SECTIONS
                        if old_sections.get(k) != new_sections.get(k)},
        compat=compat,
        params_old=a.param_count(), params_new=b.param_count(),
        flops_old=a.flops_per_token(ctx), flops_new=b.flops_per_token(ctx),
    )
    out.headline = headline(out, a, b)
    return out


# -- top-level groups and their nodes ---------------------------------------------------
def _compare_groups(a: LayerGraph, b: LayerGraph, ctx: int
                    ) -> tuple[list[GroupDelta], list[tuple[str, _ChangeKey]], list[str]]:
    old = {g.name: g for g in a.groups}
    new = {g.name: g for g in b.groups}
    deltas: list[GroupDelta] = []
    changes: list[tuple[str, _ChangeKey]] = []
    suggested: list[str] = []
    for name in _merged_order([g.name for g in a.groups], [g.name for g in b.groups]):
        ga, gb = old.get(name), new.get(name)
        pa, fa = _cost(a, ga, ctx)
        pb, fb = _cost(b, gb, ctx)
        delta = GroupDelta(name, "same", _kind(ga), _kind(gb), pa, pb, fa, fb)
        if ga is None or gb is None or (ga.kind == "op") != (gb.kind == "op"):
            delta.status = "added" if ga is None else "removed" if gb is None else "changed"
            if ga is not None:
                changes.append((name, ("removed", _kind(ga) or "", (), _at(ga.span))))
            if gb is not None:
                changes.append((name, ("added", _kind(gb) or "", (), _at(gb.span))))
        elif ga.kind == "op":
            assert ga.node is not None and gb.node is not None
            found = _node_details(ga.node, gb.node, "", "", {}, {}, group_outputs(a), group_outputs(b))
            if found:
                delta.status = "changed"
                changes.append((name, ("changed", _op_label(ga.node, gb.node), tuple(found), _at(gb.node.span))))
        else:
            found_changes, layers, moved = _compare_instances(a, b, ga, gb)
            if found_changes or layers:
                delta.status = "changed"
            delta.layers = layers
            changes += found_changes
            suggested += moved
        deltas.append(delta)
    return deltas, changes, suggested


def _merged_order(old: list[str], new: list[str]) -> list[str]:
    """B's order, with each entry only A has placed after its predecessor in A."""
    out = list(new)
    for i, name in enumerate(old):
        if name in out:
            continue
        before = next((old[k] for k in range(i - 1, -1, -1) if old[k] in out), None)
        out.insert(out.index(before) + 1 if before is not None else 0, name)
    return out


def _compare_instances(a: LayerGraph, b: LayerGraph, ga: Group, gb: Group
                       ) -> tuple[list[tuple[str, _ChangeKey]], str | None, list[str]]:
    pairs = align(instance_signatures(a, ga.instances), instance_signatures(b, gb.instances))
    changes: list[tuple[str, _ChangeKey]] = []
    for i, j in pairs:
        if i is None and j is not None:
            inst = gb.instances[j]
            changes.append((inst.name, ("added", inst.block, (f"{len(inst.nodes)} nodes",), _at(gb.span))))
        elif j is None and i is not None:
            inst = ga.instances[i]
            changes.append((inst.name, ("removed", inst.block, (f"{len(inst.nodes)} nodes",), _at(ga.span))))
        elif i is not None and j is not None:
            changes += _instance_changes(a, b, ga.instances[i], gb.instances[j])
    layers = _layers_note(ga, gb, pairs)
    moved = [f"{gb.name}.{j}:{j + n}={ga.name}.{i}:{i + n}" if n > 1 else f"{gb.name}.{j}={ga.name}.{i}"
             for j, i, n in offset_runs(pairs)] if gb.kind == "repeat" and ga.kind == "repeat" else []
    return changes, layers, moved


def _instance_changes(a: LayerGraph, b: LayerGraph, ia: Any, ib: Any) -> list[tuple[str, _ChangeKey]]:
    va, vb = instance_view(a, ia), instance_view(b, ib)
    by_local_a = {n.name[len(ia.name) + 1:]: n for n in ia.nodes}
    by_local_b = {n.name[len(ib.name) + 1:]: n for n in ib.nodes}
    out: list[tuple[str, _ChangeKey]] = []
    for local in _merged_order(list(va), list(vb)):
        na, nb = by_local_a.get(local), by_local_b.get(local)
        if na is None and nb is not None:
            out.append((nb.name, ("added", nb.op, (), _at(nb.span))))
        elif nb is None and na is not None:
            out.append((na.name, ("removed", na.op, (), _at(na.span))))
        elif na is not None and nb is not None:
            found = _details(va[local], vb[local])
            if found:
                out.append((nb.name, ("changed", _op_label(na, nb), tuple(found), _at(nb.span))))
    return out


def _node_details(na: Node, nb: Node, pa: str, pb: str, ins_a: dict[str, str], ins_b: dict[str, str],
                  outs_a: dict[str, str], outs_b: dict[str, str]) -> list[str]:
    return _details(local_signature(na, pa, ins_a, outs_a), local_signature(nb, pb, ins_b, outs_b))


def _details(sa: Mapping[str, Any], sb: Mapping[str, Any]) -> list[str]:
    """What differs between two local node signatures, one short phrase each."""
    found: list[str] = []
    if sa["op"] != sb["op"]:
        found.append(f"op {sa['op']} → {sb['op']}")
    pa, pb = sa["params"], sb["params"]
    for key in list(pb) + [k for k in pa if k not in pb]:
        if pa.get(key) != pb.get(key):
            found.append(f"{key} {show(pa.get(key))} → {show(pb.get(key))}")
    if sa["in"] != sb["in"]:
        found.append(f"inputs {_pairs(sa['in'])} → {_pairs(sb['in'])}")
    if sa["ties"] != sb["ties"]:
        found.append(f"ties {_pairs(sa['ties']) or 'none'} → {_pairs(sb['ties']) or 'none'}")
    if sa["shape"] != sb["shape"]:
        found.append(f"output {sa['shape']} → {sb['shape']}")
    return found


def _pairs(d: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _op_label(na: Node, nb: Node) -> str:
    return nb.op if na.op == nb.op else f"{na.op} → {nb.op}"


def _layers_note(ga: Group, gb: Group, pairs: list[tuple[int | None, int | None]]) -> str | None:
    """E.g. ``12 → 13: inserted h.3`` for a repeated block; None when the count and alignment agree."""
    from specc.diff.align import ranges

    added = [j for i, j in pairs if i is None and j is not None]
    removed = [i for i, j in pairs if j is None and i is not None]
    if not added and not removed:
        return None
    parts = []
    if added:
        parts.append(f"{'added' if min(added) >= len(ga.instances) else 'inserted'} {gb.name}.{ranges(added)}")
    if removed:
        parts.append(f"removed {ga.name}.{ranges(removed)} of the old")
    return f"{len(ga.instances)} → {len(gb.instances)}: " + "; ".join(parts)


def _kind(group: Group | None) -> str | None:
    if group is None:
        return None
    if group.node is not None:
        return group.node.op
    block = group.instances[0].block
    return f"{block} × {len(group.instances)}" if group.kind == "repeat" else block


def _cost(graph: LayerGraph, group: Group | None, ctx: int) -> tuple[int, int]:
    if group is None:
        return 0, 0
    nodes = [group.node] if group.node else [n for i in group.instances for n in i.nodes]
    params = sum(n.own_params() for n in nodes)
    flops = sum(n.record.flops(n.params, {k: graph.shape_of(v) for k, v in n.inputs.items()}, ctx) for n in nodes)
    return params, flops


def _at(span: Any) -> str | None:
    return span.describe() if span is not None else None


def show(value: Any) -> str:
    """A value as a person reads it: ``None`` is "default", floats lose float noise."""
    if value is None:
        return "default"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return str(value)


# -- values: [params], the model's interface, runtime sections ----------------------------
def _params(a: LayerGraph, b: LayerGraph) -> list[ValueChange]:
    pa, pb = a.spec.params, b.spec.params
    out = []
    for name in list(pa) + [k for k in pb if k not in pa]:
        old, new = pa.get(name), pb.get(name)
        if name in pa and name in pb and old == new and type(old) is type(new):
            continue
        status: Status = "added" if name not in pa else "removed" if name not in pb else "changed"
        written = b.spec.raw.data.get("params", {}).get(name)
        out.append(ValueChange(f"params.{name}", status, old, new, _where(a, ("params", name)) if name in pa else None,
                               _where(b, ("params", name)) if name in pb else None,
                               written if isinstance(written, str) else None))
    return out


def _model(a: LayerGraph, b: LayerGraph) -> list[ValueChange]:
    def view(g: LayerGraph) -> dict[str, tuple[Any, tuple]]:
        v: dict[str, tuple[Any, tuple]] = {"name": (g.spec.name, ("name",)), "description": (g.spec.description, ("description",)),
                                           "init.std": (g.spec.init_std, ("init", "std")), "init.seed": (g.spec.seed, ("init", "seed"))}
        v.update({f"model.inputs.{k}": (str(t), ("model", "inputs", k)) for k, t in g.inputs.items()})
        v.update({f"model.outputs.{k}": (g.spec.model.outputs[k], ("model", "outputs", k)) for k in g.outputs})
        return v
    return _value_changes(view(a), view(b), a, b)


def _sections(a: LayerGraph, b: LayerGraph) -> list[ValueChange]:
    def view(g: LayerGraph) -> dict[str, tuple[Any, tuple]]:
        data = canonical_data(g.spec)
        flat: dict[str, tuple[Any, tuple]] = {}
        for section in RUNTIME_SECTIONS:
            if section in data:
                _flatten(data[section], (section,), flat)
        return flat
    return _value_changes(view(a), view(b), a, b)


def _flatten(value: Any, path: tuple, out: dict[str, tuple[Any, tuple]]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, path + (key,), out)
    else:
        out[".".join(map(str, path))] = (value, path)


def _value_changes(va: dict[str, tuple[Any, tuple]], vb: dict[str, tuple[Any, tuple]], a: LayerGraph, b: LayerGraph
                   ) -> list[ValueChange]:
    out = []
    for key in list(va) + [k for k in vb if k not in va]:
        (old, pa), (new, pb) = va.get(key, (None, ())), vb.get(key, (None, ()))
        if key in va and key in vb and old == new:
            continue
        change: Status = "added" if key not in va else "removed" if key not in vb else "changed"
        out.append(ValueChange(key, change, old, new, _where(a, pa) if key in va else None,
                               _where(b, pb) if key in vb else None))
    return out


def _where(g: LayerGraph, path: tuple) -> str | None:
    span = g.spec.raw.value_span(path) if path else None
    return span.describe() if span is not None else None
