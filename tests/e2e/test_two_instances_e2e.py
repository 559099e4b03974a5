"""Two `modelport up` instances on one PostgreSQL: one leads (runs the controller), both
gateways accept the same sessions and tokens and route to the leader's replicas, a follower
wakes a service scaled to zero, and when the leader is SIGKILLed the other takes over and
serves with replicas it starts itself."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, wait_for
from tests.e2e.conftest import ADMIN, ADMIN_PASSWORD, isvc_yaml
from tests.helpers.balancer import Balancer
from tests.helpers.login import five_step_login
from tests.helpers.pgdatabase import fresh_database
from tests.pgserver import start_pg_server

SETOSA = {"instances": [[5.1, 3.5, 1.4, 0.2]]}  # class 0 for the iris model
TAKEOVER_BOUND_S = 30  # generous: the lease lasts 5 s; this machine is noisy


@dataclass
class Instance:
    """One `modelport up` in its own process group, and a CLI logged in to it."""

    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    env: dict[str, str]
    output: list[str] = field(default_factory=list)

    def cli(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "modelport", *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            cwd=ROOT,
            timeout=120,
        )
        assert done.returncode == 0, f"modelport {args}: {done.stdout}{done.stderr}"
        return done.stdout

    def health(self) -> dict:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).json()
        except httpx.HTTPError:
            return {}

    def kill(self) -> None:
        """SIGKILL the whole process group (the platform and its zygote)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return "".join(self.output)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_instance(
    work: Path, database_url: str, port: int, public_url: str, extra: tuple[str, ...] = ()
) -> Instance:
    env = {
        **os.environ,
        "MODELPORT_ADMIN_EMAIL": ADMIN,
        "MODELPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MODELPORT_CONFIG_DIR": str(work / "config"),
    }
    # One address for clients (the balancer's): the identity provider's issuer, which
    # every token names, is the same whichever instance issued it.
    argv = [sys.executable, "-m", "modelport", "up", "--port", str(port)]
    argv += ["--public-url", public_url]
    argv += ["--data-dir", str(work / "data"), "--database-url", database_url]
    argv += ["--scale-to-zero-grace", "1", *extra]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group, killed as one
    )
    lines: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r"modelport platform: (http://\S+)", line)
            if m:
                found["url"] = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(90) or "url" not in found:
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError("modelport up did not start:\n" + "".join(lines))
    url = f"http://127.0.0.1:{port}"
    instance = Instance(proc, url, work / "data", {**env, "MODELPORT_URL": public_url})
    instance.output = lines
    assert wait_for(lambda: "role" in instance.health(), timeout=60), instance.log()
    return instance


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = start_pg_server()
    yield fresh_database(server.url)
    server.stop()


@pytest.fixture(scope="module")
def instances(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Instance, Instance, Balancer]]:
    ports = [free_port(), free_port()]
    balancer = Balancer([("127.0.0.1", port) for port in ports])
    started: list[Instance] = []
    try:
        for name, port in zip("ab", ports, strict=True):
            work = tmp_path_factory.mktemp(name)
            started.append(start_instance(work, pg_url, port, balancer.url))
        yield started[0], started[1], balancer
    finally:
        for instance in started:
            instance.kill()
        balancer.close()


def _infer(url: str, headers: dict[str, str], name: str = "sklearn-iris") -> httpx.Response:
    return httpx.post(
        f"{url}/serving/default/{name}/v1/models/{name}:predict",
        json=SETOSA,
        headers=headers,
        timeout=90,
    )


def _item(instance: Instance, headers: dict[str, str], name: str) -> dict:
    r = httpx.get(
        f"{instance.url}/api/v1/namespaces/default/inferenceservices/{name}",
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _ready(instance: Instance, headers: dict[str, str], name: str) -> bool:
    conditions = _item(instance, headers, name)["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _published(database_url: str, service: str) -> list[str]:
    """The replica addresses the leader has published for ``service``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT address FROM serving_endpoints WHERE service = :s"), {"s": service}
            ).all()
    finally:
        engine.dispose()
    return [address for (address,) in rows if address]


def _refuses(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def _cli_at(instance: Instance, token: str, *args: str) -> str:
    """The CLI aimed at this instance itself (not the balancer), with a Bearer token."""
    env = {**instance.env, "MODELPORT_URL": instance.url, "MODELPORT_TOKEN": token}
    done = subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, f"modelport {args}: {done.stdout}{done.stderr}"
    return done.stdout


def _stored(database_url: str, service: str) -> tuple[int, int]:
    """How many objects and revisions the database holds for ``service``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            objects = conn.execute(
                text("SELECT count(*) FROM resources WHERE name = :s"), {"s": service}
            ).scalar_one()
            revisions = conn.execute(
                text("SELECT count(*) FROM revisions WHERE service = :s"), {"s": service}
            ).scalar_one()
    finally:
        engine.dispose()
    return int(objects), int(revisions)


GRAPH = """\
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: iris-graph
  namespace: default
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - serviceName: sklearn-iris
          name: iris
"""
KSERVE_LIST = "/k8s/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"


def _standby_answers_as_the_leader(
    a: Instance, b: Instance, bearer: dict[str, str], token: str, pg_url: str
) -> None:
    """The control plane through the standby shows the leader's picture: status, the
    Kubernetes-style list and watch, logs; a graph answers; a forged marker is ignored."""
    assert b.health()["role"] == "standby"
    assert _ready(b, bearer, "sklearn-iris"), _item(b, bearer, "sklearn-iris")
    listed = _cli_at(b, token, "get", "isvc")
    row = next(line.split() for line in listed.splitlines() if line.startswith("sklearn-iris"))
    assert "True" in row, listed
    r = httpx.get(f"{b.url}{KSERVE_LIST}", headers=bearer, timeout=30)
    assert r.status_code == 200, r.text
    (item,) = [i for i in r.json()["items"] if i["metadata"]["name"] == "sklearn-iris"]
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in item["status"]["conditions"])
    # A watch streams through the standby and ends when its timeout says.
    params = {"watch": "true", "timeoutSeconds": "2"}
    with httpx.stream(
        "GET", f"{b.url}{KSERVE_LIST}", params=params, headers=bearer, timeout=30
    ) as watch:
        assert watch.status_code == 200
        events = [line for line in watch.iter_lines() if line.strip()]
    assert any('"sklearn-iris"' in e and '"ADDED"' in e for e in events), events
    # kubectl's own https listener on the standby relays too.
    kube = re.search(r"API at (https://\S+)/k8s\)", b.log())
    assert kube, b.log()
    listed_tls = httpx.get(
        f"{kube.group(1)}{KSERVE_LIST}", headers=bearer, timeout=30, verify=False
    )
    assert listed_tls.status_code == 200 and listed_tls.json()["items"], listed_tls.text
    # ... and `modelport kubeconfig` through the standby names the standby's own listener.
    cluster = httpx.get(f"{b.url}/k8s/modelport/cluster", headers=bearer, timeout=30)
    assert cluster.json()["cluster"]["server"] == f"{kube.group(1)}/k8s", cluster.text
    # The replica's log is a file on the leader's disk; its metrics are the leader's.
    assert _cli_at(b, token, "logs", "sklearn-iris").strip()
    service = f"{b.url}/api/v1/namespaces/default/inferenceservices/sklearn-iris"

    def sampled_a_replica() -> bool:
        samples = httpx.get(f"{service}/metrics", headers=bearer, timeout=30).json()["samples"]
        return any(float(s.get("replicas") or 0) >= 1 for s in samples)

    assert wait_for(sampled_a_replica, timeout=60)
    # The web UI's page and its live status (server-sent events) through the standby.
    page = httpx.get(f"{b.url}/ui/ns/default/services/sklearn-iris", headers=bearer, timeout=30)
    assert page.status_code == 200 and "sklearn-iris" in page.text
    status_url = f"{b.url}/ui/ns/default/services/sklearn-iris/status"
    with httpx.stream("GET", status_url, headers=bearer, timeout=30) as events:
        assert events.status_code == 200, events.read()
        first = next(line for line in events.iter_lines() if line.startswith("data:"))
    assert json.loads(first.removeprefix("data:"))["ready"] == "True", first
    # A client's copy of the instances' marker does not stop the standby from forwarding.
    forged = {**bearer, "x-modelport-leader-forward": "0" * 64}
    r = httpx.get(
        f"{b.url}/api/v1/namespaces/default/inferenceservices/sklearn-iris",
        headers=forged,
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["status"]["conditions"], r.text
    assert any(c["status"] == "True" for c in r.json()["status"]["conditions"])
    r = httpx.get(f"{a.url}/api/v1/namespaces", headers=forged, timeout=30)
    assert r.status_code == 200, r.text
    # An InferenceGraph applied through the standby answers through the standby.
    graph = Path(b.data_dir.parent / "graph.yaml")
    graph.write_text(GRAPH)
    applied = _cli_at(b, token, "apply", "-f", str(graph))
    assert "iris-graph created" in applied, applied
    assert _stored(pg_url, "iris-graph") == (1, 0)
    # Graphs applied through another instance reach each gateway's catalog within its poll
    # (2 s, control/graphs.py); until then the name is no service either: 404.
    answers: list[httpx.Response] = []

    def graph_answers() -> bool:
        url = f"{b.url}/serving/default/iris-graph"
        answers.append(httpx.post(url, json=SETOSA, headers=bearer, timeout=90))
        return answers[-1].status_code != 404

    assert wait_for(graph_answers, timeout=30), answers[-1].text
    assert answers[-1].status_code == 200, answers[-1].text + b.log()[-2000:]
    assert answers[-1].json() == {"predictions": [0]}
    # A delete through the standby lands too, once: a second one finds nothing.
    _cli_at(b, token, "delete", "ig", "iris-graph")
    assert _stored(pg_url, "iris-graph") == (0, 0)
    again = httpx.delete(
        f"{b.url}/api/v1/namespaces/default/inferencegraphs/iris-graph", headers=bearer
    )
    assert again.status_code == 404, again.text


def test_two_instances_share_access_route_and_survive_the_leader(
    instances: tuple[Instance, Instance, Balancer], iris_dir: Path, tmp_path: Path, pg_url: str
):
    a, b, balancer = instances
    assert a.health()["role"] == "leading", a.log()
    assert b.health()["role"] == "standby", b.log()
    assert "leading" in a.log() and "standby" in b.log()

    # One login, accepted by both: the CLI's Bearer token and the browser's cookie, each
    # made by one instance and used on the other.
    a.cli("login", "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
    bearer = {"Authorization": f"Bearer {a.cli('token').strip()}"}
    cookie_b, _ = five_step_login(b.url, user=ADMIN, password=ADMIN_PASSWORD)
    cookie_a, _ = five_step_login(a.url, user=ADMIN, password=ADMIN_PASSWORD)
    for instance, headers in (
        (b, bearer),
        (a, {"Cookie": f"authservice_session={cookie_b}"}),
        (b, {"Cookie": f"authservice_session={cookie_a}"}),
    ):
        r = httpx.get(f"{instance.url}/api/v1/namespaces", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
    bad = httpx.get(f"{b.url}/api/v1/namespaces", headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401

    # Deployed through the follower (the standby relays the apply to the leader, once);
    # the leader runs it; both gateways serve it.
    manifest = tmp_path / "iris.yaml"
    manifest.write_text(isvc_yaml("sklearn-iris", str(iris_dir)))
    token = bearer["Authorization"].split()[1]
    applied = _cli_at(b, token, "apply", "-f", str(manifest))
    assert applied.strip() == "inferenceservice.serving.kserve.io/sklearn-iris created", applied
    assert _stored(pg_url, "sklearn-iris") == (1, 1)  # one object, one revision
    assert wait_for(lambda: _ready(a, bearer, "sklearn-iris"), timeout=120), a.log()
    _standby_answers_as_the_leader(a, b, bearer, token, pg_url)
    for instance in (a, b):
        r = _infer(instance.url, bearer)
        assert r.status_code == 200, f"{instance.url}: {r.text}\n{a.log()}\n{b.log()}"
        assert r.json() == {"predictions": [0]}
    r = _infer(b.url, {"Cookie": f"authservice_session={cookie_a}"})
    assert r.status_code == 200, r.text
    assert not (b.data_dir / "logs" / "default" / "sklearn-iris").exists()  # b runs none

    # A service scaled to zero wakes for a request that reaches the follower.
    manifest.write_text(isvc_yaml("iris-zero", str(iris_dir), minReplicas=0))
    a.cli("apply", "-f", str(manifest))
    assert wait_for(lambda: _ready(a, bearer, "iris-zero"), timeout=120), a.log()
    # Scaled to zero for sure: nothing published, and the replica it had refuses.
    assert wait_for(lambda: bool(_published(pg_url, "iris-zero")), timeout=120), a.log()
    (address,) = set(_published(pg_url, "iris-zero"))
    gone = wait_for(lambda: not _published(pg_url, "iris-zero") and _refuses(address), 120)
    assert gone, a.log()
    r = _infer(b.url, bearer, "iris-zero")
    assert r.status_code == 200, r.text + b.log()[-2000:]
    assert r.json() == {"predictions": [0]}

    # The leader dies without a word; the other takes the lease and starts replicas.
    killed_at = time.monotonic()
    a.kill()
    # Until b takes the lease (the dead leader's lasts up to 5 s more), nobody answers for
    # the control plane: b says so, in JSON, rather than showing its idle controller.
    r = httpx.get(f"{b.url}/api/v1/namespaces/default/inferenceservices", headers=bearer)
    if b.health().get("role") == "standby":
        assert r.status_code == 503, r.text
        assert "try again" in r.json()["error"] and r.headers["retry-after"]
        print(f"the standby while nobody answers for the leader: {r.json()['error']}")
    took_over = wait_for(lambda: b.health().get("role") == "leading", timeout=TAKEOVER_BOUND_S)
    assert took_over, b.log()
    print(f"takeover after SIGKILL: {time.monotonic() - killed_at:.1f} s")
    r = _infer(b.url, bearer)
    assert r.status_code == 200, r.text + b.log()[-2000:]
    assert r.json() == {"predictions": [0]}
    # Clients of the balancer's address now reach b, logins included.
    b.cli("login", "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
    fresh = {"Authorization": f"Bearer {b.cli('token').strip()}"}
    assert _infer(balancer.url, fresh).json() == {"predictions": [0]}
    assert list((b.data_dir / "logs" / "default" / "sklearn-iris").glob("*.log"))
    assert _ready(b, bearer, "sklearn-iris")

    # A leader stopped cleanly gives the lease up: a third instance takes over without
    # waiting for it to expire, and serves.
    port = free_port()
    c = start_instance(tmp_path / "c", pg_url, port, balancer.url)
    try:
        balancer.backends.append(("127.0.0.1", port))
        assert c.health()["role"] == "standby"
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(60) == 0, b.log()
        stopped_at = time.monotonic()
        assert wait_for(lambda: c.health().get("role") == "leading", timeout=TAKEOVER_BOUND_S)
        print(f"takeover after a clean stop: {time.monotonic() - stopped_at:.1f} s")
        assert "standby" in c.log() and "leading" in c.log()
        r = _infer(balancer.url, fresh)
        assert r.status_code == 200, r.text + c.log()[-2000:]
        assert r.json() == {"predictions": [0]}
    finally:
        c.kill()
