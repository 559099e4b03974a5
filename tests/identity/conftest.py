"""A real identity provider process with a Kubeflow-style Dex config."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.identity.clock import ManualClock
from modelport.identity.db import make_engine, session_factory
from modelport.identity.provider import Provider
from tests.helpers.kubeflow import (
    AUTHSERVICE_ID,
    AUTHSERVICE_SECRET,
    DEX_CONFIG,
    USER_EMAIL,
    USER_HASH,
    USER_PASSWORD,
)
from tests.helpers.servers import CliServer, CliServers, start_identity

# Imported from here by tests of other packages (tests/e2e, tests/control).
__all__ = [
    "AUTHSERVICE_ID",
    "AUTHSERVICE_SECRET",
    "DEX_CONFIG",
    "USER_EMAIL",
    "USER_HASH",
    "USER_PASSWORD",
    "start_identity",
]


@pytest.fixture
def provider(tmp_path: Path, clock: ManualClock) -> Provider:
    """A provider in process, on a SQLite file, reading the test's clock."""
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/id.db"))
    return Provider.create("http://127.0.0.1:1/dex", sessions, clock=clock)


@pytest.fixture(scope="module")
def idp(cli_servers: CliServers) -> CliServer:
    """`modelport identity serve` on a free port with Kubeflow's example Dex config."""
    return cli_servers.identity(DEX_CONFIG)
