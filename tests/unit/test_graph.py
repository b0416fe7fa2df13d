"""Dependency graphs: cycles named as loops, stable topological order, transitive dependencies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra.engine.graph import ancestors, find_cycle, topological_order

Edges = dict[str, list[str]]


def test_no_cycle() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    assert find_cycle({}) is None


def test_cycle_is_named_as_a_loop() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]


def test_self_loop() -> None:
    assert find_cycle({"a": [], "b": ["b"]}) == ["b", "b"]


def test_first_cycle_in_node_order_is_reported() -> None:
    edges = {"x": ["y"], "y": ["x"], "a": ["b"], "b": ["a"]}
    assert find_cycle(edges) == ["x", "y", "x"]
    assert find_cycle(dict(reversed(list(edges.items())))) == ["b", "a", "b"]


def test_cycle_reached_through_a_tail_excludes_the_tail() -> None:
    assert find_cycle({"start": ["a"], "a": ["b"], "b": ["a"]}) == ["a", "b", "a"]


def test_dependencies_outside_the_graph_are_ignored() -> None:
    assert find_cycle({"a": ["missing"]}) is None
    assert topological_order(["a", "b"], {"a": ["missing"], "b": ["a"]}) == ["a", "b"]


def test_topological_order_breaks_ties_by_the_given_order() -> None:
    edges = {"report": ["plan"], "photos": ["plan"], "edit": ["photos", "report"], "plan": []}
    assert topological_order(["edit", "report", "photos", "plan"], edges) == [
        "plan",
        "report",
        "photos",
        "edit",
    ]
    assert topological_order(["photos", "report", "edit", "plan"], edges) == [
        "plan",
        "photos",
        "report",
        "edit",
    ]
    assert topological_order(["c", "b", "a"], {}) == ["c", "b", "a"]


def test_topological_order_ignores_repeated_nodes_and_edges() -> None:
    assert topological_order(["b", "a", "b"], {"b": ["a", "a"]}) == ["a", "b"]


def test_topological_order_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="dependency cycle: b -> c -> b"):
        topological_order(["a", "b", "c"], {"b": ["c"], "c": ["b"]})


def test_ancestors_are_transitive() -> None:
    edges = {"d": ["b", "c"], "c": ["a"], "b": ["a"], "a": []}
    assert ancestors("d", edges) == {"a", "b", "c"}
    assert ancestors("a", edges) == set()
    assert ancestors("unknown", edges) == set()
    assert ancestors("a", {"a": ["b"], "b": ["a"]}) == {"a", "b"}


def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    n = 5000
    edges = {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(n)}
    assert find_cycle(edges) is None
    assert topological_order(list(reversed(edges)), edges)[:3] == ["s0", "s1", "s2"]
    edges["s0"] = [f"s{n - 1}"]
    cycle = find_cycle(edges)
    assert cycle is not None and len(cycle) == n + 1


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], Edges]:
    """A random DAG: node i may depend only on nodes created before it; nodes listed in random order."""
    size = draw(st.integers(min_value=1, max_value=25))
    created = [f"n{i}" for i in range(size)]
    edges: Edges = {}
    for i, node in enumerate(created):
        deps = draw(st.lists(st.sampled_from(created[:i]), max_size=4)) if i else []
        edges[node] = deps
    order = draw(st.permutations(created))
    return list(order), {node: edges[node] for node in order}


@settings(max_examples=200, deadline=None, database=None)
@given(dags())
def test_topological_order_respects_every_edge(dag: tuple[list[str], Edges]) -> None:
    nodes, edges = dag
    order = topological_order(nodes, edges)
    assert sorted(order) == sorted(nodes)
    position = {node: i for i, node in enumerate(order)}
    for node, deps in edges.items():
        for dep in deps:
            assert position[dep] < position[node], f"{node} comes before its dependency {dep}"
    assert find_cycle(edges) is None
    for node in nodes:
        assert all(position[a] < position[node] for a in ancestors(node, edges))


@settings(max_examples=200, deadline=None, database=None)
@given(dags(), st.data())
def test_a_back_edge_makes_a_real_cycle(dag: tuple[list[str], Edges], data: st.DataObject) -> None:
    nodes, edges = dag
    with_ancestors = [node for node in nodes if ancestors(node, edges)]
    if not with_ancestors:
        node = nodes[0]
        edges[node] = [*edges[node], node]  # a self-loop is the smallest back edge
    else:
        node = data.draw(st.sampled_from(with_ancestors))
        ancestor = data.draw(st.sampled_from(sorted(ancestors(node, edges))))
        edges[ancestor] = [*edges[ancestor], node]

    cycle = find_cycle(edges)

    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1, "the loop visits each node once"
    for here, there in zip(cycle, cycle[1:], strict=False):
        assert there in edges[here], f"{here} -> {there} is not an edge"
    with pytest.raises(ValueError, match="dependency cycle"):
        topological_order(nodes, edges)
