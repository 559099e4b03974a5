"""A real identity provider process with a Kubeflow-style Dex config."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import start_and_read

# Kubeflow's example user: user@example.com / 12341234 (bcrypt from its Dex config map).
USER_EMAIL = "user@example.com"
USER_PASSWORD = "12341234"
USER_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"
AUTHSERVICE_ID = "kubeflow-oidc-authservice"
AUTHSERVICE_SECRET = "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"

DEX_CONFIG = f"""
issuer: http://dex.auth.svc.cluster.local:5556/dex
storage:
  type: kubernetes
oauth2:
  skipApprovalScreen: true
enablePasswordDB: true
staticPasswords:
- email: {USER_EMAIL}
  hash: "{USER_HASH}"
  username: user
  userID: "15841185641784"
  groups: [team-a]
- email: second@example.com
  hash: "{USER_HASH}"
  username: second
  userID: "2"
staticClients:
- id: {AUTHSERVICE_ID}
  redirectURIs: ["/login/oidc", "/authservice/oidc/callback", "http://127.0.0.1/callback"]
  name: 'Dex Login Application'
  secret: {AUTHSERVICE_SECRET}
- id: approving-app
  redirectURIs: ["http://127.0.0.1/approve-cb"]
  secret: approving-secret
- id: modelport-cli
  name: modelport CLI
  public: true
"""


@dataclass
class IdentityServer:
    proc: subprocess.Popen[str]
    issuer: str
    output: list[str]

    @property
    def base(self) -> str:
        return self.issuer.removesuffix("/dex")


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    """`modelport identity serve` on a free port with the config above."""
    work = tmp_path_factory.mktemp("idp")
    config = work / "dex.yaml"
    config.write_text(DEX_CONFIG)
    server = start_identity(work / "data", config)
    yield server
    server.proc.terminate()
    server.proc.wait(10)


def start_identity(data_dir: Path, config: Path | None, *extra: str) -> IdentityServer:
    argv = [
        sys.executable,
        "-m",
        "modelport",
        "identity",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        "0",
        *extra,
    ]
    if config is not None:
        argv += ["--config", str(config)]
    proc, found, lines = start_and_read(
        argv, {"issuer": r"identity provider: issuer (http://\S+)"}, ready="discovery"
    )
    return IdentityServer(proc, found["issuer"], lines)
