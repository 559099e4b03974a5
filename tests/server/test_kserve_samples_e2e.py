"""Models written the way KServe's samples are (python/custom_model, python/custom_transformer),
imports changed from ``kserve`` to ``modelport`` only, served by real processes over HTTP and
gRPC: ``modelport serve``, and the samples' own ``python model.py --flags`` start."""

from __future__ import annotations

import re
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from modelport.protocol.grpc import grpc_predict_v2_pb2 as pb
from modelport.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.conftest import TEST_MODELS, ServerProcess, launch, serve_argv, wait_for
from tests.server.files_server import serve_directory

PREDICTOR = TEST_MODELS / "kserve_style.py"
TRANSFORMER = TEST_MODELS / "kserve_transformer.py"
IRIS_ROWS = [[68, 28, 48, 14], [51, 35, 14, 2]]
# kserve/logging.py's KSERVE_LOGGER_FORMAT: time.ms pid name level [file:func():line] message
KSERVE_LOG_LINE = (
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ modelport INFO "
    r"\[kserve_style\.py:predict\(\):\d+\] predicted 1 rows for a v1 request"
)


@pytest.fixture(scope="module")
def served() -> Iterator[ServerProcess]:
    """The sample-style predictor under `modelport serve` (gRPC on)."""
    server = launch(serve_argv(PREDICTOR, "kserve-style", "--format", "custom"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def files_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server (in this process) holding factor.tar.gz, whose factor.txt says 3."""
    root = tmp_path_factory.mktemp("files")
    (root / "factor.txt").write_text("3")
    with tarfile.open(root / "factor.tar.gz", "w:gz") as tar:
        tar.add(root / "factor.txt", arcname="factor.txt")
    (root / "factor.txt").unlink()
    with serve_directory(root) as url:
        yield url


def script_argv(path: Path, name: str, *flags: str) -> list[str]:
    """`python model.py` with KServe's flag spelling, on free ports."""
    return [sys.executable, str(path), "--model_name", name, "--http_port", "0", *flags]


# ---- the predictor under `modelport serve` ----------------------------------------------------


def test_v1_numbers_and_strings_through_get_predict_input_and_response(served):
    with served.client() as c:
        r = c.post("/v1/models/kserve-style:predict", json={"instances": [[1, 2], [3, 4]]})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [[2, 4], [6, 8]]}
        r = c.post("/v1/models/kserve-style:predict", json={"instances": ["ab", "c"]})
        assert r.json() == {"predictions": ["AB", "C"]}


def test_v2_response_keeps_the_request_id_or_gets_a_uuid(served):
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    with served.client() as c:
        with_id = c.post("/v2/models/kserve-style/infer", json={**body, "id": "req-7"}).json()
        without = c.post("/v2/models/kserve-style/infer", json=body).json()
    assert with_id["id"] == "req-7"
    assert with_id["outputs"] == [
        {"name": "output-0", "shape": [2, 2], "datatype": "FP32", "data": [2.0, 4.0, 6.0, 8.0]}
    ]
    # get_predict_response names an id-less response with generate_uuid(), as KServe does.
    assert uuid.UUID(without["id"]).version == 4


def test_v2_text_comes_back_as_bytes_strings(served):
    body = {"inputs": [{"name": "t", "shape": [2], "datatype": "BYTES", "data": ["ab", "c"]}]}
    with served.client() as c:
        out = c.post("/v2/models/kserve-style/infer", json=body).json()["outputs"][0]
    assert out == {"name": "output-0", "shape": [2], "datatype": "BYTES", "data": ["AB", "C"]}


def test_grpc_through_kserve_module_paths(served):
    request = pb.ModelInferRequest(model_name="kserve-style", id="g-1")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[3])
    tensor.contents.CopyFrom(pb.InferTensorContents(fp32_contents=[1.0, 2.5, 4.0]))
    with grpc.insecure_channel(served.grpc_target) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert isinstance(reply, pb.ModelInferResponse)
    assert reply.id == "g-1"
    # Sent as typed contents, so answered as typed contents.
    assert list(reply.outputs[0].contents.fp32_contents) == [2.0, 5.0, 8.0]


def test_the_models_logger_lines_reach_the_server_log(served):
    with served.client() as c:
        c.post(
            "/v1/models/kserve-style:predict", json={"instances": [[5, 5, 5]]}
        ).raise_for_status()
    assert wait_for(lambda: "predicted 1 rows for a v1 request" in served.log(), 10), served.log()


def test_response_headers_the_model_filled_reach_the_client(served):
    with served.client() as c:
        r = c.post("/v1/models/kserve-style:predict", json={"instances": [[1]]})
    assert r.status_code == 200
    assert float(r.headers["prediction-time-latency"]) >= 0
    assert r.headers["content-type"] == "application/json" and r.json()["predictions"]


# ---- the samples' own start: python model.py --flags -------------------------------------------


def test_script_start_fetches_model_dir_and_logs_in_kserves_format(start_server, files_url):
    server = start_server(
        script_argv(
            PREDICTOR, "ks", "--grpc_port", "0", "--model_dir", f"{files_url}/factor.tar.gz"
        )
    )
    with server.client() as c:
        r = c.post("/v1/models/ks:predict", json={"instances": [[1, 2]]})
    # factor.txt, unpacked from the archive Storage.download fetched, says 3.
    assert r.json() == {"predictions": [[3, 6]]}
    assert wait_for(lambda: re.search(KSERVE_LOG_LINE, server.log()) is not None, 10), server.log()


def test_model_server_configures_logging_when_the_script_does_not(start_server, tmp_path):
    # Older samples leave it to ModelServer(), which applies --configure_logging itself.
    script = tmp_path / "quiet_model.py"
    script.write_text(
        "from modelport import Model, ModelServer\n"
        "from modelport.logging import logger\n\n\n"
        "class Quiet(Model):\n"
        "    def predict(self, payload, headers=None):\n"
        "        logger.info('inline predicted')\n"
        "        return {'predictions': [1]}\n\n\n"
        "model = Quiet('quiet')\n"
        "model.load()\n"
        "ModelServer().start([model])\n"
    )
    server = start_server(script_argv(script, "quiet", "--enable_grpc", "false"))
    with server.client() as c:
        c.post("/v1/models/quiet:predict", json={"instances": [1]}).raise_for_status()
    line = r"\d+ modelport INFO \[quiet_model\.py:predict\(\):\d+\] inline predicted"
    assert wait_for(lambda: re.search(line, server.log()) is not None, 10), server.log()


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        pytest.param(
            ["--log_config_file", "{cfg}"], r"CFG modelport predicted 1 rows", id="yaml-file"
        ),
        pytest.param(["--configure_logging", "false"], None, id="not-configured"),
    ],
)
def test_log_flags(start_server, tmp_path, flags, line):
    cfg = tmp_path / "log.yaml"
    cfg.write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters: {plain: {format: 'CFG %(name)s %(message)s'}}\n"
        "handlers: {err: {class: logging.StreamHandler, formatter: plain, stream: ext://sys.stderr}}\n"
        "loggers: {modelport: {handlers: [err], level: INFO, propagate: false}}\n"
    )
    argv = script_argv(
        PREDICTOR, "ks", "--enable_grpc", "false", *(f.format(cfg=cfg) for f in flags)
    )
    server = start_server(argv)
    with server.client() as c:
        c.post("/v1/models/ks:predict", json={"instances": [[1]]}).raise_for_status()
        # A second request, so that a line the first would have logged has surely been written.
        c.post(
            "/v2/models/ks/infer",
            json={"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1]}]},
        ).raise_for_status()
    if line is None:
        # Without configuration the logger has no handler and INFO goes nowhere, as in KServe.
        assert not wait_for(lambda: "predicted" in server.log(), 2), server.log()
        assert "Started server process" not in server.log()
    else:
        assert wait_for(lambda: re.search(line, server.log()) is not None, 10), server.log()
        assert re.search(r"\] predicted", server.log()) is None  # not the default format


# ---- the transformer sample against a real predictor -------------------------------------------


def predictor_requests(server: ServerProcess) -> dict[str, float]:
    """Requests the predictor answered with 200, by protocol, from its /metrics."""
    text = httpx.get(f"{server.url}/metrics").text
    found = re.findall(
        r'modelport_requests_total\{model="sklearn-iris",protocol="(v\d)",status="200"\} (\S+)',
        text,
    )
    counts = {"v1": 0.0, "v2": 0.0}
    for protocol, value in found:
        counts[protocol] += float(value)
    return counts


@pytest.mark.parametrize(
    ("protocol_flags", "expected"),
    [
        pytest.param(["--predictor_protocol", "v1"], "v1", id="v1"),
        pytest.param(["--predictor_protocol", "v2"], "v2", id="v2"),
        pytest.param(["--protocol", "v2"], "v2", id="v2-older-flag"),
        pytest.param([], "v1", id="default"),
    ],
)
def test_transformer_reaches_predictor_by_predictor_config(
    iris_server: ServerProcess, start_server, protocol_flags, expected
):
    transformer = start_server(
        script_argv(
            TRANSFORMER,
            "sklearn-iris",
            "--enable_grpc",
            "false",
            "--predictor_host",
            f"127.0.0.1:{iris_server.http_port}",
            *protocol_flags,
        )
    )
    scaled = [[x / 10 for x in row] for row in IRIS_ROWS]
    direct = httpx.post(
        f"{iris_server.url}/v1/models/sklearn-iris:predict", json={"instances": scaled}
    ).json()["predictions"]
    before = predictor_requests(iris_server)
    body = {
        "id": "t-1",
        "inputs": [{"name": "in", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}],
    }
    with transformer.client() as c:
        v1 = c.post("/v1/models/sklearn-iris:predict", json={"instances": IRIS_ROWS})
        v2 = c.post("/v2/models/sklearn-iris/infer", json=body)
    assert v1.status_code == 200, v1.text + transformer.log()
    assert v1.json() == {"predictions": direct}
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == direct
    # Both calls reached the predictor over the protocol that predictor_config named.
    # (The predictor counts a request just after answering it, in either of its two workers.)
    other = "v2" if expected == "v1" else "v1"
    assert wait_for(lambda: predictor_requests(iris_server)[expected] - before[expected] == 2, 5)
    assert predictor_requests(iris_server)[other] == before[other]
