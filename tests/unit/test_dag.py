"""The workflow picture: layers follow dependencies, text is escaped, output is valid, stable SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from orchestra.web.dag import STATUS_COLOURS, DagNode, render_dag

NS = {"svg": "http://www.w3.org/2000/svg"}
JOURNALISM = [
    DagNode("document_creation", "Document creation", "machine", (), status="Complete"),
    DagNode("article_planning", "Article planning", "human", ("document_creation",), status="Complete"),
    DagNode("reporting", "Reporting", "human", ("article_planning",), status="Processing"),
    DagNode("photography", "Photography", "human", ("article_planning",), status="Pending Review"),
    DagNode("photo_adjustment", "Photo adjustment", "machine", ("photography",), status="Failed"),
    DagNode("copy_editing", "Copy editing", "human", ("photo_adjustment", "reporting")),
]
DIAMOND = [
    DagNode("a", "A", "human", ()),
    DagNode("b", "B", "human", ("a",)),
    DagNode("c", "C", "machine", ("a",)),
    DagNode("d", "D", "human", ("b", "c"), waits_for=("a",)),
]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _boxes(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Top-left corner of each step's box, by slug."""
    found = {}
    for g in root.iter(f"{{{NS['svg']}}}g"):
        if "dag-node" in g.get("class", "").split():
            x, y = re.fullmatch(r"translate\(([-\d.]+),([-\d.]+)\)", g.get("transform", "")).groups()
            found[g.get("data-step")] = (float(x), float(y))
    return found


def _columns(nodes: list[DagNode]) -> dict[str, int]:
    boxes = _boxes(_parse(render_dag(nodes, title="t")))
    xs = sorted({x for x, _ in boxes.values()})
    return {slug: xs.index(x) for slug, (x, _) in boxes.items()}


def _edges(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{{{NS['svg']}}}path") if p.get("class", "").startswith("dag-edge")]


def test_diamond_layers() -> None:
    assert _columns(DIAMOND) == {"a": 0, "b": 1, "c": 1, "d": 2}


def test_journalism_layers_are_longest_paths() -> None:
    assert _columns(JOURNALISM) == {
        "document_creation": 0,
        "article_planning": 1,
        "reporting": 2,
        "photography": 2,
        "photo_adjustment": 3,
        "copy_editing": 4,
    }


def test_every_edge_runs_left_to_right_from_right_side_to_left_side() -> None:
    for nodes in (DIAMOND, JOURNALISM):
        root = _parse(render_dag(nodes, title="t"))
        boxes = _boxes(root)
        edges = _edges(root)
        assert edges
        for path in edges:
            (sx, sy), (dx, dy) = boxes[path.get("data-from")], boxes[path.get("data-to")]
            assert sx < dx
            coords = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path.get("d"))]
            assert coords[0] == sx + 180  # leaves the dependency's right side...
            assert coords[-2] == dx  # ...and arrives at the dependent's left side
            assert sy <= coords[1] <= sy + 50 and dy <= coords[-1] <= dy + 50
            assert path.get("marker-end", "").startswith("url(#")


def test_one_edge_per_dependency_and_waits_are_dashed() -> None:
    root = _parse(render_dag(DIAMOND, title="t"))
    edges = {(p.get("data-from"), p.get("data-to"), p.get("class")) for p in _edges(root)}
    assert edges == {
        ("a", "b", "dag-edge"),
        ("a", "c", "dag-edge"),
        ("b", "d", "dag-edge"),
        ("c", "d", "dag-edge"),
        ("a", "d", "dag-edge dag-edge-waits"),
    }
    dashed = [p for p in _edges(root) if "dag-edge-waits" in p.get("class")]
    assert [p.get("stroke-dasharray") for p in dashed] == ["5 4"]
    assert len(re.findall(r'<path class="dag-edge', render_dag(JOURNALISM, title="t"))) == 6


def test_unknown_dependencies_and_duplicates_are_ignored() -> None:
    nodes = [DagNode("a", "A", "human", ("ghost", "a")), DagNode("b", "B", "human", ("a", "a"))]
    root = _parse(render_dag(nodes, title="t"))
    assert [(p.get("data-from"), p.get("data-to")) for p in _edges(root)] == [("a", "b")]


def test_user_text_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    nodes = [
        DagNode('s"><script>', evil, "human<b>", (), status="Pending <Review>", href='#x" onclick="alert(1)'),
    ]
    svg = render_dag(nodes, title=evil)
    assert "<script" not in svg
    assert 'onclick="' not in svg
    root = _parse(svg)
    assert root.find("svg:title", NS).text == evil
    node = next(g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("data-step"))
    assert node.get("data-step") == 's"><script>'
    assert node.get("data-status") == "Pending <Review>"
    assert node.find("svg:title", NS).text.startswith(evil)


def test_output_is_xml_with_accessible_title_and_description() -> None:
    root = _parse(render_dag(JOURNALISM, title="Journalism project 7"))
    assert root.tag == f"{{{NS['svg']}}}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert "max-width" in root.get("style")
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"svg:title[@id='{title_id}']", NS).text == "Journalism project 7"
    desc = root.find(f"svg:desc[@id='{desc_id}']", NS).text
    assert "Photo adjustment, machine step, Failed; after Photography." in desc
    assert "Copy editing, human step, not started; after Photo adjustment, Reporting." in desc


def test_linked_nodes_are_focusable_links_in_a_group() -> None:
    nodes = [DagNode("a", "A", "human", (), status="Complete", href="#task-12"), DagNode("b", "B", "human", ("a",))]
    root = _parse(render_dag(nodes, title="t"))
    links = root.findall(".//svg:a", NS)
    assert [a.get("href") for a in links] == ["#task-12"]
    assert links[0].find("svg:g", NS).get("data-step") == "a"
    # An img role would hide the links from screen readers; a group keeps them reachable.
    assert root.get("role") == "group" and root.get("aria-describedby")


def test_status_classes_and_colours() -> None:
    statuses = [s for s in STATUS_COLOURS if s is not None]
    nodes = [DagNode("new", "New", "human", ())]
    nodes += [DagNode(f"t{i}", s, "human", (), status=s) for i, s in enumerate(statuses)]
    root = _parse(render_dag(nodes, title="t"))
    by_status = {g.get("data-status"): g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("data-step")}
    assert by_status[""].get("class") == "dag-node status-not-started"
    assert by_status[""].find("svg:rect", NS).get("stroke-dasharray")  # no task yet: dashed border
    assert by_status["Post-review Processing"].get("class") == "dag-node status-post-review-processing"
    for status in statuses:
        rect = by_status[status].find("svg:rect", NS)
        assert (rect.get("fill"), rect.get("stroke")) == STATUS_COLOURS[status]
        assert rect.get("stroke-dasharray") is None
    assert len({STATUS_COLOURS[s] for s in ("Complete", "Failed", "Halted", "Aborted", "Awaiting Processing")}) == 5
    # Text is white on the dark grey of Aborted and near-black on the light fills.
    assert by_status["Aborted"].find("svg:g", NS).get("fill") == "#ffffff"
    assert by_status["Complete"].find("svg:g", NS).get("fill") == "#111827"


def test_long_names_are_truncated_with_the_full_name_in_the_tooltip() -> None:
    name = "Adjust the photographs for print and for the website gallery"
    root = _parse(render_dag([DagNode("a", name, "machine", ())], title="t"))
    shown = root.find(".//svg:text", NS).text
    assert shown.endswith("…") and len(shown) < 25
    assert name in root.find(".//svg:g/svg:title", NS).text


def test_deterministic() -> None:
    assert render_dag(JOURNALISM, title="t") == render_dag(list(JOURNALISM), title="t")


def _view_box(svg: str) -> list[float]:
    return [float(v) for v in _parse(svg).get("viewBox").split()]


def test_long_chain_and_wide_fan_out() -> None:
    chain = [DagNode(f"s{i}", f"Step {i}", "script", (f"s{i - 1}",) if i else ()) for i in range(40)]
    _, _, w, h = _view_box(render_dag(chain, title="chain"))
    assert w == 2 * 16 + 40 * 180 + 39 * 64 and h == 2 * 16 + 50

    fan = [DagNode("root", "Root", "human", ())]
    fan += [DagNode(f"leaf{i}", f"Leaf {i}", "human", ("root",)) for i in range(30)]
    svg = render_dag(fan, title="fan")
    _, _, w, h = _view_box(svg)
    assert w == 2 * 16 + 2 * 180 + 64 and h == 2 * 16 + 30 * 68 - 18
    assert len(_edges(_parse(svg))) == 30
    ys = [y for slug, (_, y) in _boxes(_parse(svg)).items() if slug != "root"]
    assert ys == sorted(ys) and len(set(ys)) == 30  # leaves keep input order, one row each


def test_empty_graph_renders() -> None:
    root = _parse(render_dag([], title="No steps"))
    assert root.find("svg:desc", NS).text == "0 steps."


def test_a_definition_without_statuses_names_only_kinds() -> None:
    nodes = [DagNode("a", "A", "machine", ()), DagNode("b", "B", "human", ("a",))]
    svg = render_dag(nodes, title="Definition", with_status=False)
    assert "not started" not in svg
    assert "machine step" in svg and "human step" in svg
