"""Kubeflow's own Dex config, as kubeflow/manifests ships it, runs `modelport up` unchanged.

The file is the ConfigMap ``common/dex/base/config-map.yaml`` of Kubeflow v1.11.0
(tests/vectors/kubeflow/), with the environment Kubeflow's Deployment gives Dex from its
Secrets: ``OIDC_CLIENT_ID``/``OIDC_CLIENT_SECRET`` (``common/dex/base/secret_params.env``) and
``DEX_USER_PASSWORD``, a bcrypt hash read through ``hashFromEnv``
(``common/dex/base/dex-passwords.yaml``). Kubeflow's example user is user@example.com/12341234.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform, wait_ready
from tests.gateway.test_gateway_e2e import INFER, five_step_login, raw_client
from tests.identity.conftest import start_identity

VECTOR = ROOT / "tests" / "vectors" / "kubeflow" / "dex-config-map.v1.11.0.yaml"
USER, PASSWORD = "user@example.com", "12341234"
CLIENT_ID, CLIENT_SECRET = "kubeflow-oidc-authservice", "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"
USER_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"
KUBEFLOW_ENV = {
    "OIDC_CLIENT_ID": CLIENT_ID,
    "OIDC_CLIENT_SECRET": CLIENT_SECRET,
    "DEX_USER_PASSWORD": USER_HASH,
}
TARGET = "/serving/default/sklearn-iris/v2/models/sklearn-iris"


@pytest.fixture(scope="module")
def kubeflow(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[PlatformProcess]:
    """`modelport up --config` Kubeflow's ConfigMap, a model in `default` the user may call."""
    work = tmp_path_factory.mktemp("kubeflow")
    platform = start_platform(
        work / "data", work / "config", env=KUBEFLOW_ENV, args=("--config", str(VECTOR))
    )
    try:
        platform.cli("apply", "-f", "-", input=isvc_yaml("sklearn-iris", str(iris_dir)))
        platform.cli(
            "namespaces", "add-contributor", "default", USER, "--role", "view",
            "--data-dir", str(platform.data_dir),
        )  # fmt: skip
        wait_ready(platform, "sklearn-iris")
        yield platform
    finally:
        platform.stop()


def test_start_up_says_what_of_the_file_is_not_used(kubeflow: PlatformProcess):
    notes = [line.strip() for line in kubeflow.output if line.startswith("note: ")]
    assert "note: read the Dex config held in ConfigMap dex" in notes
    assert "note: config keys not acted on: logger, storage, web" in notes
    (issuer,) = [n for n in notes if "issuer" in n]
    assert "http://dex.auth.svc.cluster.local:5556/dex is not used" in issuer
    assert f"the issuer is {kubeflow.url}/dex" in issuer
    assert "--public-url http://dex.auth.svc.cluster.local:5556" in issuer
    discovery = httpx.get(f"{kubeflow.url}/dex/.well-known/openid-configuration").json()
    assert discovery["issuer"] == f"{kubeflow.url}/dex"
    # No secret from the environment reaches the output.
    assert not any(s in kubeflow.log() for s in (CLIENT_SECRET, USER_HASH))


def test_client_and_user_come_from_kubeflow_environment(kubeflow: PlatformProcess):
    # The client exists under OIDC_CLIENT_ID with OIDC_CLIENT_SECRET, the user's password is
    # the bcrypt hash in DEX_USER_PASSWORD: a password grant by that client proves all three.
    grant = {
        "grant_type": "password",
        "username": USER,
        "password": PASSWORD,
        "scope": "openid email",
    }
    ok = httpx.post(f"{kubeflow.url}/dex/token", data=grant, auth=(CLIENT_ID, CLIENT_SECRET))
    assert ok.status_code == 200, ok.text
    mine = httpx.get(
        f"{kubeflow.url}/dex/userinfo",
        headers={"Authorization": f"Bearer {ok.json()['access_token']}"},
    )
    assert mine.status_code == 200 and mine.json()["email"] == USER
    wrong = httpx.post(f"{kubeflow.url}/dex/token", data=grant, auth=(CLIENT_ID, "not-it"))
    assert wrong.status_code == 401
    bad_password = {**grant, "password": "wrong-password"}
    denied = httpx.post(
        f"{kubeflow.url}/dex/token", data=bad_password, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert denied.status_code in (400, 401)


def test_the_seed_flow_twice_with_kubeflow_config(kubeflow: PlatformProcess):
    # The file registers only oauth2-proxy's /oauth2/callback; the gateway adds its own
    # callbacks (Provider.allow_redirects), so the flow passes /dex/auth. skipApprovalScreen:
    # true in the file, so /dex/approval answers 303 (as in Dex).
    sessions = [five_step_login(kubeflow, TARGET, user=USER, password=PASSWORD)[0]]
    sessions.append(five_step_login(kubeflow, TARGET, user=USER, password=PASSWORD)[0])
    assert sessions[0] != sessions[1]
    with raw_client(kubeflow) as c:
        for value in sessions:
            r = c.post(
                f"{TARGET}/infer", json=INFER, headers={"Cookie": f"authservice_session={value}"}
            )
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == [1]


def test_kubeflow_pipelines_sdk_login_snippet(kubeflow: PlatformProcess):
    # The KFP SDK's snippet: follow redirects, POST login/password to the form found.
    with httpx.Client(base_url=kubeflow.url, follow_redirects=True, timeout=30) as s:
        page = s.get(TARGET)
        assert "/dex/auth/local" in str(page.url)
        landed = s.post(str(page.url), data={"login": USER, "password": PASSWORD})
        assert landed.status_code == 200 and str(landed.url).endswith(TARGET)
        assert s.cookies.get("authservice_session")
        r = s.post(f"{TARGET}/infer", json=INFER)
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1]


def _up(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`modelport up --config` Kubeflow's file with ``env``; expected to stop at start-up."""
    return subprocess.run(
        [sys.executable, "-m", "modelport", "up", "--port", "0", "--config", str(VECTOR),
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("missing", "value", "reason"),
    [
        ("OIDC_CLIENT_ID", None, "staticClients[0].idEnv: variable OIDC_CLIENT_ID is not set"),
        (
            "OIDC_CLIENT_SECRET",
            None,
            "staticClients[0].secretEnv: variable OIDC_CLIENT_SECRET is not set",
        ),
        (
            "DEX_USER_PASSWORD",
            None,
            "staticPasswords[0].hashFromEnv: variable DEX_USER_PASSWORD is not set",
        ),
        # The password itself where its hash belongs: refused, and never echoed.
        ("DEX_USER_PASSWORD", PASSWORD, "staticPasswords[0].hashFromEnv: not a bcrypt hash"),
    ],
)
def test_unusable_kubeflow_environment_stops_start_up(
    tmp_path: Path, missing: str, value: str | None, reason: str
):
    import os

    env = {k: v for k, v in {**os.environ, **KUBEFLOW_ENV}.items() if k != missing}
    if value is not None:
        env[missing] = value
    result = _up(tmp_path, env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {VECTOR}: ") and reason in line
    assert PASSWORD not in result.stdout + result.stderr
    assert CLIENT_SECRET not in result.stdout + result.stderr


def test_identity_serve_reports_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name, value in KUBEFLOW_ENV.items():
        monkeypatch.setenv(name, value)
    server = start_identity(tmp_path / "data", VECTOR)
    try:
        notes = [line.strip() for line in server.output if line.startswith("note: ")]
        assert "note: config keys not acted on: logger, storage, web" in notes
        (issuer,) = [n for n in notes if "issuer" in n]
        assert f"the issuer is {server.issuer}" in issuer
        assert "--issuer http://dex.auth.svc.cluster.local:5556/dex" in issuer
        grant = {"grant_type": "password", "username": USER, "password": PASSWORD}
        r = httpx.post(
            f"{server.issuer}/token",
            data={**grant, "scope": "openid email"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        assert r.status_code == 200, r.text
    finally:
        server.proc.terminate()
        server.proc.wait(10)


def test_gateway_reports_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.gateway.conftest import start_gateway

    for name, value in KUBEFLOW_ENV.items():
        monkeypatch.setenv(name, value)
    gw = start_gateway(tmp_path / "data", "http://127.0.0.1:9", VECTOR)
    try:
        notes = [line.strip() for line in gw.output if line.startswith("note: ")]
        assert "note: config keys not acted on: logger, storage, web" in notes
        (issuer,) = [n for n in notes if "issuer" in n]
        assert "--public-url http://dex.auth.svc.cluster.local:5556" in issuer
    finally:
        gw.proc.terminate()
        gw.proc.wait(10)
