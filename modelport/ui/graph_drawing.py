"""A drawing of an InferenceGraph for its page: one box per node, its steps listed inside,
columns by distance from ``root``, and an arrow from each step that calls another node to
that node's box. Only numbers and names come out; the template draws them as SVG."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BOX_W = 240
COLUMN_GAP = 80
ROW_GAP = 30
HEADER_H = 34
STEP_H = 24
MARGIN = 10


@dataclass
class Step:
    label: str
    y: float
    target: str | None  # another node this step calls


@dataclass
class Box:
    name: str
    router: str
    x: float = 0.0
    y: float = 0.0
    h: float = 0.0
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Drawing:
    boxes: list[Box]
    edges: list[Edge]
    width: float
    height: float


def step_label(step: dict[str, Any]) -> str:
    target = step.get("serviceName") or (f"node {step['nodeName']}" if "nodeName" in step else "")
    target = target or str(step.get("serviceUrl", "?"))
    extras = []
    if "weight" in step:
        extras.append(f"{step['weight']} %")
    if step.get("condition"):
        extras.append(f"if {step['condition']}")
    if step.get("dependency") == "Hard":
        extras.append("hard")
    name = f"{step['name']}: " if step.get("name") else ""
    return name + target + (f" ({', '.join(extras)})" if extras else "")


def _columns(nodes: dict[str, Any]) -> list[list[str]]:
    """Node names by distance from root (nodes no step reaches come last)."""
    depth = {"root": 0} if "root" in nodes else {}
    queue = list(depth)
    while queue:
        name = queue.pop(0)
        for step in (nodes.get(name) or {}).get("steps") or []:
            target = step.get("nodeName") if isinstance(step, dict) else None
            if target in nodes and target not in depth:
                depth[target] = depth[name] + 1
                queue.append(target)
    last = max(depth.values(), default=-1) + 1
    for name in nodes:
        depth.setdefault(name, last)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in nodes:
        columns[depth[name]].append(name)
    return columns


def draw(spec: dict[str, Any]) -> Drawing:
    nodes = spec.get("nodes") if isinstance(spec.get("nodes"), dict) else {}
    assert isinstance(nodes, dict)
    boxes: dict[str, Box] = {}
    height = 0.0
    for column, names in enumerate(_columns(nodes)):
        y = float(MARGIN)
        for name in names:
            node = nodes[name] if isinstance(nodes[name], dict) else {}
            steps = [s for s in node.get("steps") or [] if isinstance(s, dict)]
            box = Box(
                name, str(node.get("routerType", "")), MARGIN + column * (BOX_W + COLUMN_GAP), y
            )
            box.h = HEADER_H + STEP_H * max(1, len(steps)) + 6
            for i, step in enumerate(steps):
                target = step.get("nodeName") if step.get("nodeName") in nodes else None
                box.steps.append(Step(step_label(step), y + HEADER_H + STEP_H * i + 16, target))
            boxes[name] = box
            y += box.h + ROW_GAP
        height = max(height, y)
    edges = [
        Edge(box.x + BOX_W, step.y - 4, boxes[step.target].x, boxes[step.target].y + HEADER_H / 2)
        for box in boxes.values()
        for step in box.steps
        if step.target is not None
    ]
    columns = max((int((b.x - MARGIN) // (BOX_W + COLUMN_GAP)) for b in boxes.values()), default=0)
    width = MARGIN * 2 + (columns + 1) * BOX_W + columns * COLUMN_GAP
    return Drawing(list(boxes.values()), edges, width, max(height, 60.0))
