"""A namespace's replica quota: one tenant cannot take the platform's whole share."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform, wait_ready


def test_a_namespace_at_its_quota_starts_no_more_replicas(tmp_path: Path, iris_dir: Path):
    platform = start_platform(
        tmp_path / "data", tmp_path / "config", args=("--max-replicas-per-namespace", "1")
    )
    try:
        for name in ("first", "second"):
            platform.cli("apply", "-f", "-", input=isvc_yaml(name, str(iris_dir), namespace="busy"))
        platform.cli("apply", "-f", "-", input=isvc_yaml("other", str(iris_dir), namespace="calm"))
        wait_ready(platform, "other", "calm")  # other namespaces are not held back
        ready = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(ready) < 1:
            ready = [n for n in ("first", "second") if _ready(platform, n)]
            time.sleep(0.2)
        assert len(ready) == 1
        waiting = "second" if ready == ["first"] else "first"
        time.sleep(2)  # a few controller passes: the quota holds
        assert not _ready(platform, waiting)
        described = platform.cli("describe", "isvc", waiting, "-n", "busy").stdout
        assert "namespace busy is at its quota of 1 replicas" in described
        # Freeing the slot lets the waiting service start.
        platform.cli("delete", "isvc", ready[0], "-n", "busy")
        wait_ready(platform, waiting, "busy")
    finally:
        platform.stop()


def _ready(platform: PlatformProcess, name: str) -> bool:
    with platform.client() as c:
        item = c.get(f"/api/v1/namespaces/busy/inferenceservices/{name}").json()
    conditions = item["status"]["conditions"]
    return any(x["type"] == "Ready" and x["status"] == "True" for x in conditions)
