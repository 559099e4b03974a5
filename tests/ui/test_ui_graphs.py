"""InferenceGraph pages over real sockets: the list, a graph's drawing (nodes, steps, the
arrows between them) with hostile text shown as text, deletion behind the CSRF check, and
nothing of another namespace for an outsider."""

from __future__ import annotations

import re

import httpx

from tests.ui.conftest import Ui, csrf_of
from tests.ui.test_ui_routes import assert_no_inline_code

GRAPH = """apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: chain
  namespace: default
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
      - serviceName: classifier
        name: first
      - nodeName: split
        name: second
        data: $response
    split:
      routerType: Splitter
      steps:
      - serviceName: classifier
        weight: 80
      - serviceName: other
        weight: 20
        condition: 'instances.#(x=="</text><script>alert(1)</script>")'
"""


def test_graph_list_drawing_and_delete(ui: Ui):
    r = httpx.post(f"{ui.platform.url}/api/v1/apply", content=GRAPH, headers=ui.admin)
    assert r.status_code == 200, r.text
    with ui.client(ui.admin) as c:
        listing = c.get("/ui/graphs").text
        assert 'data-graph="default/chain"' in listing
        page = c.get("/ui/ns/default/graphs/chain")
        assert page.status_code == 200
        assert_no_inline_code(page.text)
        assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
        svg = page.text.split('<svg id="graph-drawing"', 1)[1].split("</svg>", 1)[0]
        assert "root · Sequence" in svg and "split · Splitter" in svg
        assert "classifier (80 %)" in svg
        assert len(re.findall(r'class="edge"', svg)) == 1  # root's second step → split
        assert c.get("/ui/ns/default/graphs/nope").status_code == 404
        confirm = c.get("/ui/ns/default/graphs/chain/delete")
        assert "InferenceGraph <strong>chain</strong>" in confirm.text
        token = csrf_of(confirm.text)
        assert c.post("/ui/ns/default/graphs/chain/delete", data={"x": "1"}).status_code == 403
    with ui.client(ui.outsider) as c:
        theirs_list = c.get("/ui/graphs").text
        assert "data-graph=" not in theirs_list and "No InferenceGraphs yet" in theirs_list
        assert c.get("/ui/ns/default/graphs").status_code == 403
        assert c.get("/ui/ns/default/graphs/chain").status_code == 403
        theirs = csrf_of(c.get("/ui/access").text)
        assert (
            c.post("/ui/ns/default/graphs/chain/delete", data={"csrf": theirs}).status_code == 403
        )
    with ui.client(ui.admin) as c:
        r = c.post("/ui/ns/default/graphs/chain/delete", data={"csrf": token})
        assert r.status_code == 303 and r.headers["location"].endswith("/graphs?deleted=chain")
        assert c.get("/ui/ns/default/graphs/chain").status_code == 404
        assert "No InferenceGraphs yet" in c.get("/ui/ns/default/graphs").text
