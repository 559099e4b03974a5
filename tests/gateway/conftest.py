"""A real model server behind a real gateway (with its identity provider), on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, launch, serve_argv
from tests.helpers.kubeflow import DEX_CONFIG
from tests.helpers.servers import CliServer, CliServers, start_gateway

MODELS = Path(__file__).parent / "models"
# The name tests of other packages (tests/control, tests/e2e) import a gateway under.
GatewayProcess = CliServer
__all__ = ["GatewayProcess", "start_gateway"]


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


@pytest.fixture(scope="module")
def gateway(cli_servers: CliServers, upstream: ServerProcess) -> CliServer:
    """A gateway with Kubeflow's example Dex config in front of the iris model."""
    return cli_servers.gateway(DEX_CONFIG, upstream=upstream.url)


@pytest.fixture(scope="module")
def echo_gateway(cli_servers: CliServers, echo_upstream: ServerProcess) -> CliServer:
    """A gateway in front of a model that answers with the headers it was given."""
    return cli_servers.gateway(DEX_CONFIG, upstream=echo_upstream.url)
