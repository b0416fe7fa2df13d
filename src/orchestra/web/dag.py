"""A workflow's steps drawn as a layered SVG graph, rendered on the server.

Plain Python (no Django), deterministic: the same steps always give the same bytes, so pages cache well
and tests can compare output. Layout is a small Sugiyama: longest-path layers, dummy points for edges that
skip layers, barycentre ordering sweeps. Every piece of caller text is escaped, so the result may be
wrapped in ``mark_safe``.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

__all__ = ["STATUS_COLOURS", "DagNode", "render_dag"]

# (fill, stroke) per task status; None is a step whose task does not exist yet (drawn with a dashed border).
STATUS_COLOURS: dict[str | None, tuple[str, str]] = {
    None: ("#f3f4f6", "#9ca3af"),
    "Awaiting Processing": ("#dbeafe", "#2563eb"),
    "Processing": ("#fef3c7", "#d97706"),
    "Reviewing": ("#fef3c7", "#d97706"),
    "Post-review Processing": ("#fef3c7", "#d97706"),
    "Pending Review": ("#ede9fe", "#7c3aed"),
    "Complete": ("#dcfce7", "#16a34a"),
    "Failed": ("#fee2e2", "#dc2626"),
    "Aborted": ("#4b5563", "#1f2937"),
    "Halted": ("#ffedd5", "#ea580c"),
}
_UNKNOWN_COLOURS = ("#f3f4f6", "#6b7280")
_NOT_STARTED = "not started"

_W, _H = 180, 50  # node box
_COL_GAP, _ROW_GAP, _MARGIN = 64, 18, 16
_PAD = 10  # text inset inside a box
_NAME_SIZE, _META_SIZE = 13.0, 10.5
_EDGE_COLOUR = "#64748b"
_EDGE_DASH = ' stroke-dasharray="5 4"'
_SWEEPS = 6  # alternating down and up; the order with fewest crossings is kept

Key = str | tuple[int, int]  # a step's slug, or (edge index, layer) for a point where an edge crosses a layer


@dataclass(frozen=True)
class DagNode:
    slug: str
    name: str
    kind: str  # "human", "machine", "script", "external", "tasks"
    depends_on: tuple[str, ...]  # creation dependencies, drawn solid
    waits_for: tuple[str, ...] = ()  # submission dependencies, drawn dashed
    status: str | None = None  # the task's status; None while the step has no task
    href: str | None = None


@dataclass(frozen=True)
class _Edge:
    src: str
    dst: str
    dashed: bool


def render_dag(nodes: Sequence[DagNode], *, title: str, with_status: bool = True) -> str:
    """Return an ``<svg>`` element drawing ``nodes`` left to right, each edge pointing at the dependent step.

    Without `with_status` (a workflow's definition rather than a project) boxes name only the step's kind.
    """
    first: dict[str, DagNode] = {}
    for n in nodes:
        first.setdefault(n.slug, n)
    steps = list(first.values())
    edges = [
        _Edge(dep, n.slug, dashed)
        for n in steps
        for deps, dashed in ((n.depends_on, False), (n.waits_for, True))
        for dep in dict.fromkeys(deps)
        if dep in first and dep != n.slug
    ]
    # Both kinds of edge shape the layers, so every arrow points right.
    layer = _layers([n.slug for n in steps], edges)
    rows, chains = _order(steps, edges, layer)
    tallest = max((len(r) for r in rows), default=1)
    where: dict[Key, tuple[float, float]] = {}  # top-left corner of each box or crossing point
    for li, row in enumerate(rows):
        offset = (tallest - len(row)) / 2
        for i, key in enumerate(row):
            where[key] = (_MARGIN + li * (_W + _COL_GAP), _MARGIN + (offset + i) * (_H + _ROW_GAP))
    width = 2 * _MARGIN + len(rows) * _W + max(len(rows) - 1, 0) * _COL_GAP
    height = 2 * _MARGIN + tallest * (_H + _ROW_GAP) - _ROW_GAP

    uid = "dag-" + hashlib.sha1("\0".join([title, *first]).encode()).hexdigest()[:8]
    linked = any(n.href for n in steps)
    # role="img" makes its children presentational, which would hide the links from assistive technology.
    if linked:
        role = f'role="group" aria-labelledby="{uid}-title" aria-describedby="{uid}-desc"'
    else:
        role = f'role="img" aria-labelledby="{uid}-title {uid}-desc"'
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px;height:auto" {role} font-family="system-ui, -apple-system, sans-serif">',
        f'<title id="{uid}-title">{_esc(title)}</title>',
        f'<desc id="{uid}-desc">{_esc(_describe(steps, edges, with_status))}</desc>',
        "<style>.dag-link:focus-visible .dag-box,.dag-link:hover .dag-box{stroke-width:3}"
        ".dag-link:focus{outline:none}.dag-link:focus-visible .dag-box{stroke:#111827}</style>",
        f'<defs><marker id="{uid}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8"'
        f' markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{_EDGE_COLOUR}"/></marker>'
        f'<clipPath id="{uid}-clip"><rect x="{_PAD / 2}" y="0" width="{_W - _PAD}" height="{_H}"/></clipPath></defs>',
    ]
    leave, enter = _ports(edges, chains, where)
    for ei, (e, chain) in enumerate(zip(edges, chains, strict=True)):
        points = [where[k] for k in chain]
        d = _edge_path(where[e.src], leave[ei], points, where[e.dst], enter[ei])
        out.append(
            f'<path class="dag-edge{" dag-edge-waits" if e.dashed else ""}" data-from="{_esc(e.src)}"'
            f' data-to="{_esc(e.dst)}" d="{d}" fill="none"'
            f' stroke="{_EDGE_COLOUR}" stroke-width="1.5"{_EDGE_DASH if e.dashed else ""}'
            f' marker-end="url(#{uid}-arrow)"/>'
        )
    for n in steps:
        out.append(_node(n, where[n.slug], uid, with_status))
    out.append("</svg>")
    return "".join(out)


def _layers(slugs: list[str], edges: list[_Edge]) -> dict[str, int]:
    """Longest path from a root; a cycle (which validation should have refused) is broken at its first step."""
    preds: dict[str, list[str]] = {s: [] for s in slugs}
    for e in edges:
        preds[e.dst].append(e.src)
    layer: dict[str, int] = {}
    remaining = slugs
    while remaining:
        ready = [s for s in remaining if all(p in layer for p in preds[s])] or remaining[:1]
        for s in ready:
            layer[s] = max((layer[p] + 1 for p in preds[s] if p in layer), default=0)
        remaining = [s for s in remaining if s not in layer]
    return layer


def _order(steps: list[DagNode], edges: list[_Edge], layer: dict[str, int]) -> tuple[list[list[Key]], list[list[Key]]]:
    """Rows of keys per layer, ordered by barycentre sweeps; and each edge's crossing points."""
    rows: list[list[Key]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    tie: dict[Key, tuple[int, int]] = {}
    up: dict[Key, list[Key]] = {}
    down: dict[Key, list[Key]] = {}
    for i, n in enumerate(steps):
        rows[layer[n.slug]].append(n.slug)
        tie[n.slug] = (i, 0)
    chains: list[list[Key]] = []
    for ei, e in enumerate(edges):
        chain: list[Key] = [(ei, li) for li in range(layer[e.src] + 1, layer[e.dst])]
        for li, k in zip(range(layer[e.src] + 1, layer[e.dst]), chain, strict=True):
            rows[li].append(k)
            tie[k] = (tie[e.dst][0], 1 + ei)
        chains.append(chain)
        if layer[e.src] < layer[e.dst]:  # a back edge of a broken cycle takes no part in ordering
            path = [e.src, *chain, e.dst]
            for a, b in zip(path, path[1:], strict=False):
                down.setdefault(a, []).append(b)
                up.setdefault(b, []).append(a)
    for row in rows:
        row.sort(key=tie.__getitem__)
    tallest = max((len(r) for r in rows), default=0)
    best, fewest = [list(r) for r in rows], _crossings(rows, down)
    for sweep in range(_SWEEPS):
        forward = sweep % 2 == 0
        neighbours = up if forward else down
        for li in range(1, len(rows)) if forward else range(len(rows) - 2, -1, -1):
            pos = {k: (tallest - len(r)) / 2 + i for r in rows for i, k in enumerate(r)}

            def key(k: Key, pos: dict[Key, float] = pos, nb: dict[Key, list[Key]] = neighbours) -> float:
                ns = nb.get(k)
                return sum(pos[n] for n in ns) / len(ns) if ns else pos[k]

            rows[li].sort(key=key)  # stable: ties keep their order, which starts as input order
        crossings = _crossings(rows, down)
        if crossings < fewest:  # strictly fewer, so the earliest of equally good orders wins
            best, fewest = [list(r) for r in rows], crossings
    return best, chains


def _crossings(rows: list[list[Key]], down: dict[Key, list[Key]]) -> int:
    total = 0
    for row, below in zip(rows, rows[1:], strict=False):
        at = {k: i for i, k in enumerate(below)}
        segments = [(i, at[b]) for i, k in enumerate(row) for b in down.get(k, ()) if b in at]
        total += sum((a - c) * (b - d) < 0 for (a, b), (c, d) in combinations(segments, 2))
    return total


def _ports(
    edges: list[_Edge], chains: list[list[Key]], where: dict[Key, tuple[float, float]]
) -> tuple[dict[int, float], dict[int, float]]:
    """Vertical offsets where each edge leaves its source and enters its target, so arrowheads do not pile up."""
    out: dict[str, list[tuple[float, int]]] = {}
    into: dict[str, list[tuple[float, int]]] = {}
    for ei, (e, chain) in enumerate(zip(edges, chains, strict=True)):
        out.setdefault(e.src, []).append((where[chain[0] if chain else e.dst][1], ei))
        into.setdefault(e.dst, []).append((where[chain[-1] if chain else e.src][1], ei))
    offsets: tuple[dict[int, float], dict[int, float]] = ({}, {})
    for groups, found in zip((out, into), offsets, strict=True):
        for items in groups.values():
            items.sort()  # by the y of the other end, so edges sharing a side do not cross there
            step = min(10.0, (_H - 20) / max(len(items) - 1, 1))
            for j, (_, ei) in enumerate(items):
                found[ei] = (j - (len(items) - 1) / 2) * step
    return offsets


def _edge_path(
    src: tuple[float, float], leave: float, via: list[tuple[float, float]], dst: tuple[float, float], enter: float
) -> str:
    """Bézier curves from the source's right side, straight through each layer it crosses, to dst's left side."""
    x, y = src[0] + _W, src[1] + _H / 2 + leave
    d = [f"M{_n(x)},{_n(y)}"]
    for tx, ty in [(vx, vy + _H / 2) for vx, vy in via] + [(dst[0], dst[1] + _H / 2 + enter)]:
        if len(d) > 1:  # run straight across the layer just reached
            x += _W
            d.append(f"L{_n(x)},{_n(y)}")
        bend = max(abs(tx - x) / 2, 40)
        d.append(f"C{_n(x + bend)},{_n(y)} {_n(tx - bend)},{_n(ty)} {_n(tx)},{_n(ty)}")
        x, y = tx, ty
    return " ".join(d)


def _node(n: DagNode, at: tuple[float, float], uid: str, with_status: bool) -> str:
    status = n.status or ""
    fill, stroke = STATUS_COLOURS.get(n.status, _UNKNOWN_COLOURS)
    ink = "#ffffff" if _luminance(fill) < 0.35 else "#111827"
    label = n.status or _NOT_STARTED
    room = _W - 2 * _PAD
    meta = f"{n.kind} · {label}" if with_status else f"{n.kind} step"
    meta = meta if _text_width(meta, _META_SIZE) <= room else _fit(label, _META_SIZE, room)
    slug_class = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    dash = ' stroke-dasharray="5 3"' if n.status is None else ""
    group = (
        f'<g class="dag-node status-{slug_class}" data-step="{_esc(n.slug)}" data-status="{_esc(status)}"'
        f' transform="translate({_n(at[0])},{_n(at[1])})">'
        f"<title>{_esc(f'{n.name} — {n.kind} step' + (f', {label}' if with_status else ''))}</title>"
        f'<rect class="dag-box" width="{_W}" height="{_H}" rx="8" fill="{fill}" stroke="{stroke}"'
        f' stroke-width="1.5"{dash}/>'
        f'<g clip-path="url(#{uid}-clip)" fill="{ink}">'
        f'<text x="{_PAD}" y="21" font-size="{_NAME_SIZE}" font-weight="600">'
        f"{_esc(_fit(n.name, _NAME_SIZE * 1.1, room))}</text>"
        f'<text x="{_PAD}" y="39" font-size="{_META_SIZE}" opacity="0.85">{_esc(meta)}</text></g></g>'
    )
    return f'<a class="dag-link" href="{_esc(n.href)}">{group}</a>' if n.href else group


def _describe(steps: list[DagNode], edges: list[_Edge], with_status: bool) -> str:
    names = {n.slug: n.name for n in steps}
    parts = [f"{len(steps)} step{'' if len(steps) == 1 else 's'}."]
    for n in steps:
        text = f"{n.name}, {n.kind} step" + (f", {n.status or _NOT_STARTED}" if with_status else "")
        for dashed, verb in ((False, "after"), (True, "waits for")):
            deps = [names[e.src] for e in edges if e.dst == n.slug and e.dashed == dashed]
            text += f"; {verb} {', '.join(deps)}" if deps else ""
        parts.append(text + ".")
    return " ".join(parts)


def _text_width(text: str, size: float) -> float:
    """A rough rendered width, erring wide, so truncation happens before the clip path has to cut."""
    em = 0.0
    for c in text:
        if unicodedata.east_asian_width(c) in "WF":
            em += 1.0
        elif c in "ijlftr.,:;'|!() ·":
            em += 0.38
        elif c.isupper() or c in "mw…—<>=+~%@#&":
            em += 0.86
        else:
            em += 0.64
    return em * size


def _fit(text: str, size: float, room: float) -> str:
    if _text_width(text, size) <= room:
        return text
    while text and _text_width(text + "…", size) > room:
        text = text[:-1]
    return text.rstrip() + "…"


def _luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _esc(text: str) -> str:
    # Control characters are not allowed in XML at all, escaped or not.
    return html.escape(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text), quote=True)


def _n(v: float) -> str:
    return f"{round(v, 1):g}"
