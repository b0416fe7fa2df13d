"""Dependency graphs: `edges` maps each node to the nodes it depends on (its prerequisites).

The functions are deterministic: wherever several answers are valid, the order of the input decides,
so two loads of the same definition give the same plan, the same error message and the same digest.
Dependencies that are not nodes of the graph are ignored here; definition validation reports them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence

__all__ = ["ancestors", "find_cycle", "topological_order"]


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The first dependency loop found, as `[a, b, c, a]` (a depends on b, b on c, c on a), or None.

    Nodes are explored in the order of `edges` and dependencies in the order listed, so the loop
    reported for a definition never changes between runs.
    """
    done: set[str] = set()
    for root in edges:
        if root in done:
            continue
        # An explicit stack instead of recursion: a long chain of steps must not hit the recursion limit.
        path: list[str] = [root]
        position: dict[str, int] = {root: 0}
        stack: list[Iterator[str]] = [iter(edges.get(root, ()))]
        while stack:
            for dep in stack[-1]:
                if dep in position:
                    return [*path[position[dep] :], dep]
                if dep not in done:
                    position[dep] = len(path)
                    path.append(dep)
                    stack.append(iter(edges.get(dep, ())))
                    break
            else:
                finished = path.pop()
                del position[finished]
                done.add(finished)
                stack.pop()
    return None


def topological_order(nodes: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """`nodes` with every node after its dependencies; among nodes that are ready together, the one
    earlier in `nodes` comes first (a stable Kahn's algorithm). Raises ValueError on a cycle.
    """
    index: dict[str, int] = {}
    for node in nodes:
        index.setdefault(node, len(index))
    waiting_on: dict[str, set[str]] = {node: {dep for dep in edges.get(node, ()) if dep in index} for node in index}
    dependents: dict[str, list[str]] = {node: [] for node in index}
    for node, deps in waiting_on.items():
        for dep in deps:
            dependents[dep].append(node)
    ready = [(i, node) for node, i in index.items() if not waiting_on[node]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for dependent in dependents[node]:
            waiting_on[dependent].discard(node)
            if not waiting_on[dependent]:
                heapq.heappush(ready, (index[dependent], dependent))
    if len(order) < len(index):
        stuck = {node: sorted(deps, key=index.__getitem__) for node, deps in waiting_on.items() if deps}
        cycle = find_cycle(stuck)
        loop = " -> ".join(cycle) if cycle else ", ".join(stuck)
        raise ValueError(f"dependency cycle: {loop}")
    return order


def ancestors(node: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    """Every node `node` depends on, directly or transitively (itself only if it lies on a cycle)."""
    found: set[str] = set()
    todo = list(edges.get(node, ()))
    while todo:
        dep = todo.pop()
        if dep not in found:
            found.add(dep)
            todo.extend(edges.get(dep, ()))
    return found
