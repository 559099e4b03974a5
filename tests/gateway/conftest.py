"""A real model server behind a real gateway (with its identity provider), on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, launch, serve_argv, start_and_read
from tests.identity.conftest import DEX_CONFIG

MODELS = Path(__file__).parent / "models"


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[str]
    url: str
    output: list[str]
    data_dir: Path


def start_gateway(
    data_dir: Path, upstream: str, config: Path | None, *extra: str
) -> GatewayProcess:
    argv = [
        sys.executable,
        "-m",
        "modelport",
        "gateway",
        "--upstream",
        upstream,
        "--data-dir",
        str(data_dir),
        "--port",
        "0",
        *extra,
    ]
    if config is not None:
        argv += ["--config", str(config)]
    proc, found, lines = start_and_read(
        argv, {"url": r"^modelport gateway: (http://\S+)"}, ready="discovery"
    )
    return GatewayProcess(proc, found["url"], lines, data_dir)


@pytest.fixture(scope="module")
def upstream(iris_dir: Path) -> Iterator[ServerProcess]:
    server = launch(serve_argv(iris_dir, "sklearn-iris", "--grpc-port", "-1"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[ServerProcess]:
    server = launch(
        serve_argv(MODELS / "echo_headers.py", "echo", "--format", "custom", "--grpc-port", "-1")
    )
    yield server
    server.stop()


def _gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str
) -> Iterator[GatewayProcess]:
    work = tmp_path_factory.mktemp("gw")
    config = work / "dex.yaml"
    config.write_text(DEX_CONFIG)
    gw = start_gateway(work / "data", upstream_url, config)
    yield gw
    gw.proc.terminate()
    gw.proc.wait(10)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: ServerProcess
) -> Iterator[GatewayProcess]:
    yield from _gateway(tmp_path_factory, upstream.url)


@pytest.fixture(scope="module")
def echo_gateway(
    tmp_path_factory: pytest.TempPathFactory, echo_upstream: ServerProcess
) -> Iterator[GatewayProcess]:
    yield from _gateway(tmp_path_factory, echo_upstream.url)
