"""Live data for the UI, over real sockets: the log tail over server-sent events follows a
replica's log as it grows, the metrics history counts the requests a model answered, both
refused to anyone without a role in the namespace."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from tests.e2e.conftest import isvc_yaml, wait_ready
from tests.ui.conftest import Ui

SERVICE = "/api/v1/namespaces/default/inferenceservices/live-iris"


def test_log_tail_follows_the_file(ui: Ui, iris_dir: Path):
    ui.platform.cli("apply", "-f", "-", input=isvc_yaml("live-iris", str(iris_dir)))
    wait_ready(ui.platform, "live-iris")
    logs = ui.platform.data_dir / "logs" / "default" / "live-iris"
    with httpx.Client(base_url=ui.platform.url, headers=ui.admin, timeout=30) as c:
        with c.stream("GET", f"{SERVICE}/logs/stream?component=predictor") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            seen: list[dict] = []
            appended = False
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = orjson.loads(line.removeprefix("data:"))
                seen.append(event)
                if not appended and "starting on port" in event.get("line", ""):
                    # The tail's first lines came; what is written from now on follows.
                    log = next(logs.glob("live-iris-predictor-*.log"))
                    with log.open("a") as f:
                        f.write("a line written <b>after</b> the stream began\n")
                    appended = True
                if "after</b> the stream began" in event.get("line", ""):
                    break
        assert seen[0]["file"].startswith("live-iris-predictor-00001-")
        assert r.status_code == 200
        assert c.get(f"{SERVICE}/logs/stream?component=nope").status_code == 400
    with httpx.Client(base_url=ui.platform.url, headers=ui.outsider, timeout=30) as c:
        assert c.get(f"{SERVICE}/logs/stream").status_code == 403
        assert c.get(f"{SERVICE}/metrics").status_code == 403


def test_metrics_count_the_requests(ui: Ui, iris_dir: Path):
    ui.platform.cli("apply", "-f", "-", input=isvc_yaml("live-iris", str(iris_dir)))
    wait_ready(ui.platform, "live-iris")
    predict = "/serving/default/live-iris/v1/models/live-iris:predict"
    with httpx.Client(base_url=ui.platform.url, headers=ui.admin, timeout=30) as c:
        first = c.get(f"{SERVICE}/metrics")
        assert first.status_code == 200 and first.json()["interval_s"] > 0
        deadline = time.monotonic() + 60
        found: list[dict] = []
        while time.monotonic() < deadline:
            for _ in range(5):
                r = c.post(predict, json={"instances": [[6.8, 2.8, 4.8, 1.4]]})
                assert r.status_code == 200
            c.post(predict, json={"instances": "not a list"})  # an error, counted as one
            found = c.get(f"{SERVICE}/metrics").json()["samples"]
            if any((s["rps"] or 0) > 0 and (s["errors_per_s"] or 0) > 0 for s in found):
                break
            time.sleep(1)
        assert found[0]["rps"] is None  # the first reading has nothing to compare with
        busy = [s for s in found if (s["rps"] or 0) > 0]
        assert busy, found
        assert all(s["replicas"] == 1 for s in found)
        assert any((s["errors_per_s"] or 0) > 0 for s in found), found
        assert all(s["p50_ms"] is not None and 0 < s["p50_ms"] <= s["p99_ms"] for s in busy)


def test_new_routes_are_described_in_openapi(ui: Ui):
    with httpx.Client(base_url=ui.platform.url, headers=ui.admin, timeout=30) as c:
        paths = c.get("/api/openapi.json").json()["paths"]
    for path in (
        "/v1/namespaces/{namespace}/inferenceservices/{name}/logs/stream",
        "/v1/namespaces/{namespace}/inferenceservices/{name}/metrics",
        "/v1/namespaces/{namespace}/contributors",
        "/v1/tokens",
        "/v1/sessions/sign-out-everywhere",
    ):
        assert path in paths, path
        assert all(op.get("summary") for op in paths[path].values()), path


def test_events_tell_revisions_and_failures(ui: Ui, iris_dir: Path):
    ui.platform.cli("apply", "-f", "-", input=isvc_yaml("live-iris", str(iris_dir)))
    wait_ready(ui.platform, "live-iris")
    broken = isvc_yaml("broken", "http://127.0.0.1:9/<b>model</b>.joblib")
    ui.platform.cli("apply", "-f", "-", input=broken)
    with httpx.Client(base_url=ui.platform.url, headers=ui.admin, timeout=30) as c:
        items = c.get(f"{SERVICE}/events").json()["items"]
        reasons = {(e["reason"], e["message"]) for e in items}
        assert ("RevisionCreated", "live-iris-predictor-00001") in reasons
        assert ("RevisionReady", "live-iris-predictor-00001") in reasons
        assert [e["t"] for e in items] == sorted((e["t"] for e in items), reverse=True)
        broken_events = "/api/v1/namespaces/default/inferenceservices/broken/events"
        deadline = time.monotonic() + 60
        warnings: list[dict] = []
        while time.monotonic() < deadline and not warnings:
            warnings = [e for e in c.get(broken_events).json()["items"] if e["warning"]]
            time.sleep(0.5)
        assert warnings, c.get(broken_events).json()
        page = c.get("/ui/ns/default/services/broken?tab=events", headers={"Accept": "text/html"})
        assert page.status_code == 200 and 'class="warning"' in page.text
        assert "<b>model</b>" not in page.text
    with httpx.Client(base_url=ui.platform.url, headers=ui.outsider, timeout=30) as c:
        assert c.get(f"{SERVICE}/events").status_code == 403


def _events(response: httpx.Response, until: str) -> list[tuple[str, str, str]]:
    """(event, id, data) of a stream's events up to the first of type ``until``."""
    found: list[tuple[str, str, str]] = []
    event, ident, data = "message", "", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("id:"):
            ident = line.removeprefix("id:").strip()
        elif line.startswith("data:"):
            data = line.removeprefix("data:").strip()
        elif line == "" and data:
            found.append((event, ident, data))
            if event == until:
                return found
            event, data = "message", ""
    return found


def test_log_tail_resumes_where_it_was(ui: Ui, iris_dir: Path):
    ui.platform.cli("apply", "-f", "-", input=isvc_yaml("live-iris", str(iris_dir)))
    wait_ready(ui.platform, "live-iris")
    url = f"{SERVICE}/logs/stream?component=predictor"
    with httpx.Client(base_url=ui.platform.url, headers=ui.admin, timeout=30) as c:
        with c.stream("GET", url) as r:
            first = _events(r, "offsets")
        resume_at = first[-1][1]
        assert first[0][0] == "line" and ".log:" in resume_at
        log = next((ui.platform.data_dir / "logs" / "default" / "live-iris").glob("*-00001-*.log"))
        with log.open("a") as f:
            f.write("written while no one was connected\n")
        with c.stream("GET", url, headers={"Last-Event-ID": resume_at}) as r:
            again = _events(r, "offsets")
        lines = [orjson.loads(d)["line"] for e, _, d in again if e == "line"]
        assert lines[0] == "written while no one was connected"
        assert not [line for line in lines if "starting on port" in line]  # nothing repeated
