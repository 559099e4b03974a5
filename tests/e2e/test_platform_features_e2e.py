"""Platform features beyond the basic lifecycle: restarts, s3 storage on a real
S3-compatible server, transformers, the payload logger, and hostile control-API input."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN, PlatformProcess, isvc_yaml, start_platform, wait_ready
from tests.pgserver import start_pg_server
from tests.s3server import S3Server, start_s3_server

MODELS = Path(__file__).parent / "models"
VERSICOLOR = [6.8, 2.8, 4.8, 1.4]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("features")
    running = start_platform(work / "data", work / "config", env=s3.env())
    yield running
    running.stop()


def _apply(platform: PlatformProcess, tmp_path: Path, text: str, check: bool = True):
    f = tmp_path / f"doc-{time.monotonic_ns()}.yaml"
    f.write_text(text)
    return platform.cli("apply", "-f", str(f), check=check)


def _predict(platform: PlatformProcess, name: str, rows: list[list[float]]) -> dict:
    with platform.client() as c:
        r = c.post(f"/serving/default/{name}/v1/models/{name}:predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    return r.json()


def test_model_from_s3(platform: PlatformProcess, s3: S3Server, iris_dir: Path, tmp_path: Path):
    import boto3

    client = boto3.client("s3", **s3.client_kwargs())
    client.create_bucket(Bucket="models")
    client.upload_file(str(iris_dir / "model.joblib"), "models", "iris/model.joblib")
    _apply(platform, tmp_path, isvc_yaml("from-s3", "s3://models/iris"))
    wait_ready(platform, "from-s3")
    assert _predict(platform, "from-s3", [VERSICOLOR]) == {"predictions": [1]}

    _apply(platform, tmp_path, isvc_yaml("no-bucket", "s3://missing-bucket/iris"))
    with platform.client() as c:

        def failed_with_reason() -> bool:
            item = c.get("/api/v1/namespaces/default/inferenceservices/no-bucket").json()
            ready = [x for x in item["status"]["conditions"] if x["type"] == "Ready"][0]
            return ready["status"] == "False" and "404" in ready.get("message", "")

        assert wait_for(failed_with_reason, 30)
    described = platform.cli("describe", "isvc", "no-bucket").stdout
    assert "s3://missing-bucket/iris" in described
    platform.cli("delete", "isvc", "no-bucket")


def test_transformer_in_front_of_predictor(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
):
    doc = (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n  name: scaled\n"
        "spec:\n"
        "  predictor:\n"
        "    model:\n"
        "      modelFormat: {name: sklearn}\n"
        f"      storageUri: {iris_dir}\n"
        "  transformer:\n"
        "    containers:\n"
        "    - name: kserve-container\n"
        "      image: example.com/scaler:latest\n"
        "      env:\n"
        "      - name: STORAGE_URI\n"
        f"        value: file://{MODELS / 'scaler.py'}\n"
    )
    out = _apply(platform, tmp_path, doc)
    assert "image" in out.stderr  # reported as kept but not acted on
    wait_ready(platform, "scaled")
    # The transformer divides by 10, so these rows reach the model as VERSICOLOR.
    answer = _predict(platform, "scaled", [[x * 10 for x in VERSICOLOR]])
    assert answer == {"predictions": [1], "transformed": True}
    logs = platform.cli("logs", "scaled", "--component", "transformer").stdout
    assert "transformer" in logs
    platform.cli("delete", "isvc", "scaled")


class _Sink(http.server.BaseHTTPRequestHandler):
    events: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 — http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Sink.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_payload_logger_sends_cloudevents(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
):
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{sink.server_address[1]}/events"
        doc = isvc_yaml("logged", str(iris_dir)).replace(
            "    model:\n", f"    logger:\n      mode: all\n      url: {url}\n    model:\n"
        )
        _apply(platform, tmp_path, doc)
        wait_ready(platform, "logged")
        body = json.dumps({"instances": [VERSICOLOR]}).encode()
        with platform.client() as c:
            r = c.post(
                "/serving/default/logged/v1/models/logged:predict",
                content=body,
                headers={"Content-Type": "application/json", "Ce-Id": "req-42"},
            )
        assert r.status_code == 200
        assert wait_for(lambda: len(_Sink.events) >= 2, 15)
        by_type = {h["ce-type"]: (h, b) for h, b in _Sink.events}
        request, response = (
            by_type["org.kubeflow.serving.inference.request"],
            by_type["org.kubeflow.serving.inference.response"],
        )
        assert request[1] == body
        assert json.loads(response[1]) == {"predictions": [1]}
        for headers, _ in (request, response):
            assert headers["ce-id"] == "req-42"
            assert headers["ce-specversion"] == "1.0"
            assert headers["ce-inferenceservicename"] == "logged"
            assert headers["ce-namespace"] == "default"
            assert headers["ce-component"] == "predictor"
    finally:
        sink.shutdown()
    platform.cli("delete", "isvc", "logged")


def test_hostile_control_api_input(platform: PlatformProcess):
    with platform.client() as c:
        r = c.post("/api/v1/apply", content=b"x" * (2 << 20))
        assert r.status_code == 413
        r = c.post("/api/v1/apply", content=b"\xff\xfe\x00garbage")
        assert r.status_code == 422 and r.json()["error"]
        r = c.post("/api/v1/apply", content=b"[1, 2, 3]")
        assert r.status_code == 422
        bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
            b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((i,) * 2 + (i - 1,) * 9)
            for i in range(ord("b"), ord("k"))
        )
        started = time.monotonic()
        r = c.post("/api/v1/apply", content=bomb)
        assert r.status_code == 422 and time.monotonic() - started < 30
        r = c.post("/api/v1/apply", content=b"")
        assert r.status_code == 422
        r = c.get("/api/v1/namespaces/default/inferenceservices/..%2f..%2fetc")
        assert r.status_code in (403, 404)
        r = c.put("/api/v1/namespaces/default/inferenceservices/x")
        assert r.status_code == 405
        r = c.get("/api/v1/nothing-here")
        assert r.status_code == 404
        r = c.get("/api/v1/namespaces/default/inferenceservices/x/logs", params={"tail": "many"})
        assert r.status_code in (400, 404)
        # The platform is still fine.
        assert c.get("/api/v1/inferenceservices").status_code == 200


def test_api_tokens_are_scoped(platform: PlatformProcess, iris_dir: Path, tmp_path: Path):
    platform.cli(
        "namespaces", "create", "team-t", "--owner", ADMIN, "--data-dir", str(platform.data_dir)
    )
    view = platform.cli(
        "tokens",
        "create",
        "--namespace",
        "team-t",
        "--role",
        "view",
        "--owner",
        ADMIN,
        "--data-dir",
        str(platform.data_dir),
    ).stdout.split()[-1]
    edit = platform.cli(
        "tokens",
        "create",
        "--namespace",
        "team-t",
        "--role",
        "edit",
        "--owner",
        ADMIN,
        "--data-dir",
        str(platform.data_dir),
    ).stdout.split()[-1]
    assert view.startswith("mpt_") and edit.startswith("mpt_")
    # Tokens never carry admin rights, so they deploy from the platform's volumes.
    volume = platform.data_dir / "volumes" / "team-t" / "tok" / "iris"
    volume.mkdir(parents=True)
    (volume / "model.joblib").write_bytes((iris_dir / "model.joblib").read_bytes())
    doc = isvc_yaml("tok", "pvc://tok/iris", namespace="team-t")
    local = isvc_yaml("tok", str(iris_dir), namespace="team-t")
    r = httpx.post(
        f"{platform.url}/api/v1/apply", content=local, headers={"Authorization": f"Bearer {edit}"}
    )
    assert r.status_code == 422 and "local paths are for admins" in r.text
    r = httpx.post(
        f"{platform.url}/api/v1/apply", content=doc, headers={"Authorization": f"Bearer {view}"}
    )
    assert r.status_code == 403
    r = httpx.post(
        f"{platform.url}/api/v1/apply", content=doc, headers={"Authorization": f"Bearer {edit}"}
    )
    assert r.status_code == 200, r.text
    other = isvc_yaml("tok", str(iris_dir), namespace="default")
    r = httpx.post(
        f"{platform.url}/api/v1/apply", content=other, headers={"Authorization": f"Bearer {edit}"}
    )
    assert r.status_code == 403
    wait_ready(platform, "tok", "team-t")
    r = httpx.post(
        f"{platform.url}/v1/models/tok:predict",
        json={"instances": [VERSICOLOR]},
        headers={"Authorization": f"Bearer {view}", "Host": "tok.team-t.example.com"},
    )
    assert r.status_code == 200 and r.json() == {"predictions": [1]}
    platform.cli("delete", "isvc", "tok", "-n", "team-t")


def test_restart_keeps_services(tmp_path: Path, iris_dir: Path):
    first = start_platform(tmp_path / "data", tmp_path / "config")
    try:
        _apply(first, tmp_path, isvc_yaml("durable", str(iris_dir)))
        before = wait_ready(first, "durable")
    finally:
        first.stop()
    assert first.proc.returncode == 0
    assert not _processes_named("mp:durable"), "replicas outlived the platform"
    second = start_platform(tmp_path / "data", tmp_path / "config")
    try:
        after = wait_ready(second, "durable")
        revision = "durable-predictor-00001"
        assert before["status"]["components"]["predictor"]["latestReadyRevision"] == revision
        assert after["status"]["components"]["predictor"]["latestReadyRevision"] == revision
        assert _predict(second, "durable", [VERSICOLOR]) == {"predictions": [1]}
        assert "password:" not in second.log()  # the admin came from the environment
    finally:
        second.stop()


def test_platform_on_postgresql(tmp_path: Path, iris_dir: Path):
    server = start_pg_server()
    try:
        platform = start_platform(
            tmp_path / "data", tmp_path / "config", args=("--database-url", server.url)
        )
        try:
            _apply(platform, tmp_path, isvc_yaml("pg-iris", str(iris_dir)))
            wait_ready(platform, "pg-iris")
            assert _predict(platform, "pg-iris", [VERSICOLOR]) == {"predictions": [1]}
        finally:
            platform.stop()
        assert not (tmp_path / "data" / "control.db").exists()
        from sqlalchemy import create_engine, text

        with create_engine(server.url).connect() as conn:
            names = conn.execute(text("SELECT name FROM resources")).scalars().all()
        assert names == ["pg-iris"]
    finally:
        server.stop()


def _processes_named(comm: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == comm:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_scales_up_under_concurrent_load(platform: PlatformProcess, tmp_path: Path):
    doc = (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n  name: busy\n"
        "spec:\n"
        "  predictor:\n"
        "    scaleMetric: concurrency\n"
        "    scaleTarget: 1\n"
        "    maxReplicas: 3\n"
        "    model:\n"
        "      modelFormat: {name: custom}\n"
        f"      storageUri: {MODELS / 'slow.py'}\n"
    )
    _apply(platform, tmp_path, doc)
    wait_ready(platform, "busy")
    token = platform.token()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(
            base_url=platform.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            while not stop.is_set():
                c.post("/serving/default/busy/v1/models/busy:predict", json={"instances": [[1]]})

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    seen = []
    try:
        with platform.client() as c:

            def scaled() -> bool:
                item = c.get("/api/v1/namespaces/default/inferenceservices/busy").json()
                seen.append(item["status"]["replicas"])
                return item["status"]["replicas"] >= 2

            assert wait_for(scaled, 40), seen
    finally:
        stop.set()
        for t in threads:
            t.join()
    # Never above maxReplicas.
    assert max(seen) <= 3
    platform.cli("delete", "isvc", "busy")


def test_openapi_and_unacted_fields(platform: PlatformProcess, iris_dir: Path, tmp_path: Path):
    with platform.client() as c:
        spec = c.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/apply" in spec["paths"]
    assert "post" in spec["paths"]["/v1/apply"]
    assert "/v1/namespaces/{namespace}/inferenceservices/{name}" in spec["paths"]
    doc = isvc_yaml("noted", str(iris_dir)).replace(
        "    model:\n", "    nodeSelector:\n      gpu: none\n    model:\n"
    )
    out = _apply(platform, tmp_path, doc)
    assert "spec.predictor.nodeSelector" in out.stderr
    kept = platform.cli("get", "isvc", "noted", "-o", "json").stdout
    assert json.loads(kept)["spec"]["predictor"]["nodeSelector"] == {"gpu": "none"}
    platform.cli("delete", "isvc", "noted")
    gone = platform.cli("get", "isvc", "noted", check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr


def test_replicas_get_no_platform_secrets(platform: PlatformProcess, tmp_path: Path):
    doc = (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n  name: probe\n"
        "spec:\n"
        "  predictor:\n"
        "    model:\n"
        "      modelFormat: {name: custom}\n"
        f"      storageUri: {MODELS / 'env_probe.py'}\n"
        "      env:\n"
        "      - {name: GREETING, value: hello}\n"
    )
    _apply(platform, tmp_path, doc)
    wait_ready(platform, "probe")
    with platform.client() as c:
        r = c.post("/serving/default/probe/v1/models/probe:predict", json={"instances": [1]})
    assert r.status_code == 200
    names = set(r.json()["predictions"])
    assert "GREETING" in names and "PATH" in names
    leaked = {n for n in names if n.startswith(("MODELPORT_ADMIN", "AWS_", "S3_"))}
    assert not leaked
    # Responses of model code are confined: no scripts with a visitor's cookies.
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"

    # Anonymous health checks answer for the platform: they neither reach (or wake) a
    # service nor tell which services exist.
    for host in ("probe.default.example.com", "nothing.default.example.com"):
        r = httpx.get(f"{platform.url}/v2/health/ready", headers={"Host": host})
        assert r.status_code == 200 and r.json() == {"live": True}
    platform.cli("delete", "isvc", "probe")


def test_api_tokens_go_with_their_owners_account(platform: PlatformProcess):
    data = ("--data-dir", str(platform.data_dir))
    platform.cli(
        "users", "add", "carol@example.com", "--password-stdin", *data, input="pw-carol-123\n"
    )
    platform.cli("namespaces", "create", "carol-ns", "--owner", "carol@example.com", *data)
    token = platform.cli(
        "tokens", "create", "--namespace", "carol-ns", "--role", "view",
        "--owner", "carol@example.com", *data,
    ).stdout.split()[-1]  # fmt: skip
    url = f"{platform.url}/api/v1/namespaces/carol-ns/inferenceservices"
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(url, headers=bearer).status_code == 200
    out = platform.cli("users", "delete", "carol@example.com", *data).stdout
    assert "revoked 1 API token(s)" in out
    time.sleep(2.5)  # past the gateway's 2 s cache of a good authentication
    assert httpx.get(url, headers=bearer).status_code == 401
