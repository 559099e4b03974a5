"""A real model server behind a real gateway (with its identity provider), on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, launch, serve_argv
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
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r"modelport gateway: (http://\S+)", line)
            if m:
                found["url"] = m.group(1)
            if "discovery" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60) or "url" not in found:
        proc.kill()
        raise RuntimeError("gateway did not start:\n" + "".join(lines))
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
