"""REST V1 and V2 against a real `modelport serve` process over a real socket."""

from __future__ import annotations

import json
import socket

import numpy as np
import orjson
import pytest

from tests.conftest import ServerProcess

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]


def v2_body(rows=ROWS, datatype="FP32", **extra):
    return {
        "inputs": [
            {"name": "input-0", "shape": [len(rows), 4], "datatype": datatype, "data": rows}
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def expected(iris_dir):
    import joblib

    return joblib.load(iris_dir / "model.joblib").predict(np.array(ROWS)).tolist()


def test_health_and_metadata(iris_server: ServerProcess):
    with iris_server.client() as c:
        assert c.get("/v2/health/live").json() == {"live": True}
        assert c.get("/v2/health/ready").json() == {"ready": True}
        meta = c.get("/v2").json()
        assert meta["name"] == "modelport"
        assert "binary_tensor_data" in meta["extensions"]
        model = c.get("/v2/models/sklearn-iris").json()
        assert model["name"] == "sklearn-iris"
        assert model["platform"] == "sklearn"
        assert model["inputs"][0]["shape"] == [-1, 4]
        assert c.get("/v2/models/sklearn-iris/ready").json() == {
            "name": "sklearn-iris",
            "ready": True,
        }
        assert c.get("/v1/models").json() == {"models": ["sklearn-iris"]}
        assert c.get("/v1/models/sklearn-iris").json() == {"name": "sklearn-iris", "ready": True}


def test_v2_infer_matches_sklearn(iris_server: ServerProcess, expected):
    with iris_server.client() as c:
        r = c.post("/v2/models/sklearn-iris/infer", json=v2_body(id="req-42"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["id"] == "req-42"
    assert doc["model_name"] == "sklearn-iris"
    (out,) = doc["outputs"]
    assert out["name"] == "output-0"
    assert out["shape"] == [3]
    assert out["datatype"] == "INT64"
    assert out["data"] == expected


def test_v2_infer_flat_data_and_fp64(iris_server: ServerProcess, expected):
    flat = [x for row in ROWS for x in row]
    body = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": flat}]}
    with iris_server.client() as c:
        r = c.post("/v2/models/sklearn-iris/infer", content=orjson.dumps(body))
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == expected


def test_v2_binary_request_and_response(iris_server: ServerProcess, expected):
    raw = np.asarray(ROWS, dtype=np.float32).tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [3, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}],
        }
    )
    with iris_server.client() as c:
        r = c.post(
            "/v2/models/sklearn-iris/infer",
            content=header + raw,
            headers={
                "Inference-Header-Content-Length": str(len(header)),
                "Content-Type": "application/octet-stream",
            },
        )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    json_len = int(r.headers["inference-header-content-length"])
    doc = json.loads(r.content[:json_len])
    out = doc["outputs"][0]
    assert out["parameters"]["binary_data_size"] == 3 * 8
    assert "data" not in out
    assert np.frombuffer(r.content[json_len:], dtype="<i8").tolist() == expected


def test_v2_binary_output_requested_for_all(iris_server: ServerProcess, expected):
    with iris_server.client() as c:
        r = c.post(
            "/v2/models/sklearn-iris/infer", json=v2_body(parameters={"binary_data_output": True})
        )
    assert r.status_code == 200
    json_len = int(r.headers["inference-header-content-length"])
    assert np.frombuffer(r.content[json_len:], dtype="<i8").tolist() == expected


def test_v1_predict(iris_server: ServerProcess, expected):
    with iris_server.client() as c:
        r = c.post("/v1/models/sklearn-iris:predict", json={"instances": ROWS})
    assert r.status_code == 200
    assert r.json() == {"predictions": expected}


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v2/models/sklearn-iris/infer", b"{not json", 400, "invalid JSON"),
        ("/v2/models/sklearn-iris/infer", b"[1, 2]", 400, "JSON object"),
        ("/v2/models/sklearn-iris/infer", b'{"inputs": []}', 400, "non-empty"),
        (
            "/v2/models/sklearn-iris/infer",
            orjson.dumps(v2_body(datatype="FP9")),
            400,
            "Invalid datatype",
        ),
        (
            "/v2/models/sklearn-iris/infer",
            orjson.dumps(
                {"inputs": [{"name": "a", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3]}]}
            ),
            400,
            "expects 8 elements",
        ),
        (
            "/v2/models/sklearn-iris/infer",
            orjson.dumps(
                {
                    "inputs": [
                        {
                            "name": "a",
                            "shape": [1, 4],
                            "datatype": "FP32",
                            "data": ["a", "b", "c", "d"],
                        }
                    ]
                }
            ),
            400,
            "not FP32",
        ),
        (
            "/v2/models/sklearn-iris/infer",
            orjson.dumps(
                {"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
            ),
            400,
            "expects 4 features",
        ),
        (
            "/v2/models/sklearn-iris/infer",
            orjson.dumps(
                {
                    "inputs": [
                        {"name": "a", "shape": [-1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                    ]
                }
            ),
            400,
            "non-negative",
        ),
        ("/v2/models/nope/infer", orjson.dumps(v2_body()), 404, "does not exist"),
        ("/v2/models/sklearn-iris/versions/7/infer", orjson.dumps(v2_body()), 404, "version 7"),
        ("/v1/models/sklearn-iris:predict", b'{"instances": 5}', 400, "list"),
        ("/v1/models/sklearn-iris:predict", b'{"instances": [[1, 2], [1]]}', 400, "non-ragged"),
        ("/v1/models/nope:predict", b'{"instances": [[1, 2, 3, 4]]}', 404, "does not exist"),
        (
            "/v2/models/sklearn-iris/infer",
            orjson.dumps(v2_body(outputs=[{"name": "missing"}])),
            400,
            "missing",
        ),
    ],
)
def test_bad_requests_get_clear_errors(iris_server: ServerProcess, path, body, status, fragment):
    with iris_server.client() as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        assert fragment in r.json()["error"]
        # and the server is still fine
        assert c.post("/v2/models/sklearn-iris/infer", json=v2_body()).status_code == 200


def test_body_over_limit_is_413(iris_server: ServerProcess):
    big = b'{"inputs": [' + b" " * (2 * 1024 * 1024) + b"]}"
    with iris_server.client() as c:
        r = c.post("/v2/models/sklearn-iris/infer", content=big)
        assert r.status_code == 413
        assert "limit" in r.json()["error"]
    with iris_server.client() as c:
        assert c.post("/v2/models/sklearn-iris/infer", json=v2_body()).status_code == 200


def test_chunked_body_over_limit_is_413(iris_server: ServerProcess):
    def chunks():
        for _ in range(40):
            yield b" " * 65536

    with iris_server.client() as c:
        r = c.post("/v2/models/sklearn-iris/infer", content=chunks())
        assert r.status_code == 413


def test_unknown_path_and_method(iris_server: ServerProcess):
    with iris_server.client() as c:
        assert c.get("/v3/whatever").status_code == 404
        r = c.get("/v2/models/sklearn-iris/infer")
        assert r.status_code == 405
        assert r.json() == {"error": "Method Not Allowed"}


def test_binary_extension_errors(iris_server: ServerProcess):
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    )
    cases = [
        (header + b"\0" * 8, str(len(header)), "exceeds the body"),
        (header + b"\0" * 20, str(len(header)), "no input declares"),
        (header + b"\0" * 16, str(len(header) + 100), "exceeds the body"),
        (header + b"\0" * 16, "abc", "non-negative integer"),
    ]
    with iris_server.client() as c:
        for body, length, fragment in cases:
            r = c.post(
                "/v2/models/sklearn-iris/infer",
                content=body,
                headers={"Inference-Header-Content-Length": length},
            )
            assert r.status_code == 400, (length, r.text)
            assert fragment in r.json()["error"]


def test_hostile_inputs_do_not_take_the_server_down(iris_server: ServerProcess):
    deep = (
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}]}"
    )
    huge_shape = orjson.dumps(
        {"inputs": [{"name": "a", "shape": [10**12, 10**12], "datatype": "FP32", "data": [1.0]}]}
    )
    cases = [
        deep,
        huge_shape,
        b"\xff\xfe\x00garbage",
        b'{"inputs": [{"name": 5}]}',
        b'{"inputs": [{"name": "a", "shape": "x", "datatype": "FP32", "data": [1]}]}',
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1e999]}]}',
    ]
    with iris_server.client() as c:
        for body in cases:
            r = c.post("/v2/models/sklearn-iris/infer", content=body)
            assert r.status_code == 400, (body[:60], r.status_code, r.text)
            assert "error" in r.json()
        assert c.get("/v2/health/ready").status_code == 200


def test_lying_content_length_does_not_hang_server(iris_server: ServerProcess):
    with socket.create_connection(("127.0.0.1", iris_server.http_port), timeout=5) as s:
        s.sendall(
            b"POST /v2/models/sklearn-iris/infer HTTP/1.1\r\nHost: x\r\n"
            b'Content-Length: 100\r\n\r\n{"inputs"'
        )
        # The client goes away without sending the rest.
    with iris_server.client() as c:
        assert c.post("/v2/models/sklearn-iris/infer", json=v2_body()).status_code == 200


def test_metrics_count_every_request_across_workers(iris_server: ServerProcess):
    def total(text: str) -> float:
        found = 0.0
        for line in text.splitlines():
            if line.startswith(
                'modelport_requests_total{model="sklearn-iris",protocol="v1",status="200"}'
            ):
                found += float(line.split()[-1])
        return found

    with iris_server.client() as c:
        before = total(c.get("/metrics").text)
    pids = set()
    for _ in range(30):
        # A fresh connection each time, so the kernel spreads them over both workers.
        with iris_server.client() as c:
            r = c.post("/v1/models/sklearn-iris:predict", json={"instances": ROWS[:1]})
            assert r.status_code == 200
    with iris_server.client() as c:
        text = c.get("/metrics").text
    assert total(text) - before == 30
    assert "modelport_request_duration_seconds_bucket" in text
    assert 'modelport_inflight_requests{model="sklearn-iris"}' in text
    assert len(iris_server.worker_pids()) == 2
    del pids


def test_repository_extension(iris_server: ServerProcess):
    with iris_server.client() as c:
        index = c.post("/v2/repository/index", json={}).json()
        assert index == [{"name": "sklearn-iris", "state": "READY"}]
        assert c.post("/v2/repository/models/nope/load").status_code == 404
        assert c.post("/v2/repository/index", content=b"nonsense").status_code == 400


def test_unload_makes_model_unready_then_load_restores(iris_dir, start_server):
    from tests.conftest import serve_argv

    server = start_server(serve_argv(iris_dir, "iris"))
    with server.client() as c:
        assert c.post("/v2/repository/models/iris/unload").json() == {
            "name": "iris",
            "unload": True,
        }
        r = c.post("/v2/models/iris/infer", json=v2_body())
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert c.get("/v2/models/iris/ready").status_code == 503
        assert c.get("/v2/health/ready").status_code == 503
        assert c.post("/v2/repository/index").json()[0]["state"] == "UNAVAILABLE"
        assert c.post("/v2/repository/models/iris/load").json() == {"name": "iris", "load": True}
        assert c.post("/v2/models/iris/infer", json=v2_body()).status_code == 200


def test_model_response_headers_cannot_frame_or_inject():
    from modelport.server.rest import _model_headers

    found = _model_headers(
        {
            "x-latency": "3",
            "Content-Length": "0",  # the server frames the response
            "content-type": "text/html",
            "x-split": "a\r\nset-cookie: authservice_session=x",  # header injection
            "x-nul": "a\x00b",
            "x-wide": "☃",  # not latin-1
        }
    )
    assert found == [(b"x-latency", b"3")]
