"""containerConcurrency through the whole platform: the gateway holds requests past the
limit, so the replica never serves more at once, and answers 503 past the queue's bound."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import PlatformProcess, wait_ready

COUNTING = Path(__file__).parent / "models" / "counting.py"


def _deploy(platform: PlatformProcess, tmp_path: Path, name: str, predictor: str) -> None:
    doc = tmp_path / f"{name}.yaml"
    doc.write_text(
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n"
        "spec:\n"
        "  predictor:\n"
        f"{predictor}"
        "    model:\n"
        "      modelFormat: {name: custom}\n"
        f"      storageUri: {COUNTING}\n"
    )
    platform.cli("apply", "-f", str(doc))
    wait_ready(platform, name)


def _burst(platform: PlatformProcess, name: str, sleeps: list[float]) -> list[httpx.Response]:
    """One request per entry of ``sleeps``, all at once, each its own connection."""
    token = platform.token()
    responses: list[httpx.Response | None] = [None] * len(sleeps)

    def call(i: int) -> None:
        with httpx.Client(
            base_url=platform.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            responses[i] = c.post(
                f"/serving/default/{name}/v1/models/{name}:predict",
                json={"instances": [[sleeps[i]]]},
            )

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(sleeps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in responses), "a request did not finish"
    return [r for r in responses if r is not None]


def test_without_a_limit_the_model_serves_requests_at_once(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    # The control: the model does see overlapping requests when nothing holds them back.
    _deploy(platform, tmp_path, "unlimited", "    minReplicas: 1\n    maxReplicas: 1\n")
    responses = _burst(platform, "unlimited", [0.5] * 6)
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert max(r.json()["max_concurrency"] for r in responses) > 1
    platform.cli("delete", "isvc", "unlimited")


def test_container_concurrency_one_serves_one_at_a_time_and_all_succeed(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    _deploy(
        platform,
        tmp_path,
        "one-at-a-time",
        "    minReplicas: 1\n    maxReplicas: 1\n    containerConcurrency: 1\n",
    )
    started = time.monotonic()
    responses = _burst(platform, "one-at-a-time", [0.3] * 8)
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    assert max(r.json()["max_concurrency"] for r in responses) == 1
    # One after the other: eight requests of 0.3 s take at least 2.4 s.
    assert elapsed >= 2.4
    platform.cli("delete", "isvc", "one-at-a-time")


def test_past_ten_waiting_per_slot_the_gateway_answers_503(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    _deploy(
        platform,
        tmp_path,
        "bounded",
        "    minReplicas: 1\n    maxReplicas: 1\n    containerConcurrency: 1\n",
    )
    token = platform.token()
    results: list[httpx.Response] = []
    # One long request takes the only slot, ten short ones fill the queue (10 per slot).
    holder = threading.Thread(target=lambda: results.extend(_burst(platform, "bounded", [4.0])))
    holder.start()
    time.sleep(1.0)
    queued = threading.Thread(
        target=lambda: results.extend(_burst(platform, "bounded", [0.05] * 10))
    )
    queued.start()
    time.sleep(1.5)
    with httpx.Client(
        base_url=platform.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        refused = c.post(
            "/serving/default/bounded/v1/models/bounded:predict", json={"instances": [[0.05]]}
        )
    holder.join(60)
    queued.join(60)
    assert refused.status_code == 503, refused.text
    assert "pending request queue full" in refused.json()["error"]
    assert refused.headers["retry-after"] == "1"
    assert [r.status_code for r in results] == [200] * 11, [r.text for r in results]
    assert max(r.json()["max_concurrency"] for r in results) == 1
    platform.cli("delete", "isvc", "bounded")


def test_requests_waiting_for_a_slot_scale_the_revision_up(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    # Waiting requests are demand: six clients against containerConcurrency 1 must bring
    # more replicas, and still no replica ever serves two requests at once.
    _deploy(
        platform,
        tmp_path,
        "scales",
        "    minReplicas: 1\n    maxReplicas: 3\n    containerConcurrency: 1\n",
    )
    token = platform.token()
    stop = threading.Event()
    responses: list[httpx.Response] = []

    def load() -> None:
        with httpx.Client(
            base_url=platform.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            while not stop.is_set():
                responses.append(
                    c.post(
                        "/serving/default/scales/v1/models/scales:predict",
                        json={"instances": [[0.3]]},
                    )
                )

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    replicas: list[int] = []
    try:
        with platform.client() as c:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                item = c.get("/api/v1/namespaces/default/inferenceservices/scales").json()
                replicas.append(item["status"]["replicas"])
                if replicas[-1] >= 2:
                    break
                time.sleep(0.5)
        time.sleep(2)  # requests on the new replicas too
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert max(replicas) >= 2, replicas
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses[:3]]
    assert max(r.json()["max_concurrency"] for r in responses) == 1
    platform.cli("delete", "isvc", "scales")
