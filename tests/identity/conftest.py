"""A real identity provider process with a Kubeflow-style Dex config."""

from __future__ import annotations

import pytest

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


@pytest.fixture(scope="module")
def idp(cli_servers: CliServers) -> CliServer:
    """`modelport identity serve` on a free port with Kubeflow's example Dex config."""
    return cli_servers.identity(DEX_CONFIG)
