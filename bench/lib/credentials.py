"""A signed-in user for the gateway benchmarks: Kubeflow's example user and client in a Dex
config, an ID token from the password grant, and an API token from the CLI."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlencode

from bench.lib.procs import http_req

NAMESPACE = "bench"
# Kubeflow's example user and the gateway's client, as in tests/identity/conftest.py.
USER_EMAIL = "user@example.com"
USER_PASSWORD = "12341234"
USER_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"
CLIENT_ID = "kubeflow-oidc-authservice"
CLIENT_SECRET = "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"
DEX_CONFIG = f"""\
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
staticClients:
- id: {CLIENT_ID}
  redirectURIs: ["/login/oidc", "/authservice/oidc/callback"]
  name: 'Dex Login Application'
  secret: {CLIENT_SECRET}
"""


def id_token(gateway_port: int) -> str:
    """An ID token for the example user from the gateway's `/dex/token` password grant."""
    form = {"grant_type": "password", "username": USER_EMAIL, "password": USER_PASSWORD}
    form["scope"] = "openid email groups"
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"Basic {basic}",
    }
    status, _, data = http_req(
        gateway_port, "POST", "/dex/token", urlencode(form).encode(), headers
    )
    if status != 200:
        raise RuntimeError(f"password grant: HTTP {status}: {data[:300]!r}")
    token: str = json.loads(data)["id_token"]
    return token


def _cli(python: Path, args: list[str], cwd: Path, env: dict[str, str]) -> str:
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(python), "-m", "modelport", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"modelport {' '.join(args)}: {(proc.stderr or proc.stdout)[-600:]}")
    return proc.stdout


def api_token(python: Path, data_dir: Path, cwd: Path, env: dict[str, str]) -> str:
    """Create the namespace owned by the example user and an API token with view on it."""
    owner = ["--owner", USER_EMAIL, "--data-dir", str(data_dir)]
    _cli(python, ["namespaces", "create", NAMESPACE, *owner], cwd, env)
    out = _cli(
        python, ["tokens", "create", "--namespace", NAMESPACE, "--role", "view", *owner], cwd, env
    )
    found = re.search(r"\bmpt_\S+", out)
    if not found:
        raise RuntimeError("no mpt_ token in the output of `modelport tokens create`")
    return found.group(0)
