"""Shared fixtures: real model-server processes on loopback ports, identity providers and
gateways (``cli_servers``), logging in (``login``), a clock tests move (``clock``), and small
trained models."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from modelport.identity.clock import ManualClock
from tests.helpers.login import Login
from tests.helpers.servers import ROOT, CliServers, read_banner, start_and_read

__all__ = ["ROOT", "start_and_read"]  # imported from here by tests of other packages

TEST_MODELS = Path(__file__).resolve().parent / "server" / "models"
GRPC_LINE = re.compile(r"\s+gRPC\s+[\d.]+:(\d+)")


@dataclass
class ServerProcess:
    """A running ``modelport serve`` (or custom model script) and where it listens."""

    proc: subprocess.Popen[str]
    http_port: int
    grpc_port: int | None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()]

    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def launch(
    argv: list[str], timeout: float = 60.0, env: dict[str, str] | None = None
) -> ServerProcess:
    """Start a server process and wait for its start-up banner (which names the ports)."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    # The banner names the ports; its last line names the metrics endpoint.
    found, lines = read_banner(
        proc,
        {"http": r"^\s+REST\s+http://[\d.]+:(\d+)"},
        lambda line: line.strip().startswith("metrics"),
        timeout,
    )
    grpc = next((m for m in map(GRPC_LINE.match, lines) if m), None)
    return ServerProcess(proc, int(found["http"]), int(grpc.group(1)) if grpc else None, lines)


def serve_argv(path: str | Path, name: str, *extra: str) -> list[str]:
    """argv for ``modelport serve`` on free ports."""
    return [
        sys.executable,
        "-m",
        "modelport",
        "serve",
        str(path),
        "--name",
        name,
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        *extra,
    ]


@pytest.fixture(scope="session")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding an iris LogisticRegression as model.joblib."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("iris")
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), path / "model.joblib")
    return path


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Factory: start servers that are stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(argv: list[str], **kwargs: object) -> ServerProcess:
        server = launch(argv, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def password_grant(base_url: str, email: str, password: str) -> dict[str, str]:
    """A Bearer header for ``email``, from the password grant of the CLI's public client."""
    return Login().bearer(base_url, user=email, password=password)


@pytest.fixture
def clock() -> ManualClock:
    """A clock for the code under test that moves only when the test advances it."""
    return ManualClock()


@pytest.fixture(scope="session")
def login() -> Login:
    """Factory: tokens and ``authservice_session`` cookies of a user (tests/helpers/login.py)."""
    return Login()


@pytest.fixture(scope="module")
def cli_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServers]:
    """Factory: identity providers and gateways on free ports, stopped when the module ends."""
    servers = CliServers(tmp_path_factory)
    yield servers
    servers.stop_all()


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll until predicate() is true or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)  # the interval between looks, not a wait for something to happen
    return False
