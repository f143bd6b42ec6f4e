"""The builder's node order (`specc.graph.build._written_order`): a topological order that keeps the written order
wherever the references allow, as networkx's `lexicographical_topological_sort` keyed by written position gives it
(the builder used that until it stopped importing networkx to build a graph)."""

from __future__ import annotations

import random

import networkx as nx

from specc.graph.build import _cycle, _written_order


def test_keeps_the_written_order_where_references_allow() -> None:
    readers = {"out": [], "b": ["out"], "a": ["b", "out"], "c": []}  # out reads a and b; b reads a
    assert _written_order(readers) == ["a", "b", "out", "c"]
    assert _written_order({"x": [], "y": [], "z": []}) == ["x", "y", "z"]


def test_a_cycle_gives_no_order_and_is_named() -> None:
    readers = {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}
    assert _written_order(readers) is None
    assert set(_cycle(readers)) == {"a", "b", "c"}
    assert _written_order({"self": ["self"]}) is None


def test_same_order_as_networkx_on_random_tables() -> None:
    rng = random.Random(21)
    for _ in range(300):
        names = [f"n{i}" for i in range(rng.randint(1, 12))]
        rng.shuffle(names)
        rank = {n: rng.random() for n in names}  # edges go from lower to higher rank: no cycle
        readers: dict[str, list[str]] = {n: [] for n in names}
        for src in names:
            for dst in names:
                if rank[src] < rank[dst] and rng.random() < 0.3:
                    readers[src] += [dst] * rng.randint(1, 2)  # a node may read the same source twice
        dag = nx.DiGraph()
        dag.add_nodes_from(names)
        dag.add_edges_from((s, d) for s, ds in readers.items() for d in ds)
        expected = list(nx.lexicographical_topological_sort(dag, key=names.index))
        assert _written_order(readers) == expected
