"""Who may create a namespace by applying into it (issue 9): people, unless the platform turns
namespace self-service off; admins always; service accounts (OAuth2 client_credentials) and
API tokens never. Against a real ``modelport up`` process over loopback, as its clients call it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, password_grant, start_and_read
from tests.gateway.conftest import GatewayProcess
from tests.gateway.test_gateway_e2e import five_step_login
from tests.identity.conftest import DEX_CONFIG, USER_EMAIL, USER_PASSWORD

ADMIN = "admin@example.com"
SERVICE_ACCOUNT = ("approving-app", "approving-secret")  # a confidential client of DEX_CONFIG

# Status of an apply into a namespace that does not exist, for (self-service on, off);
# 200 means it was created with the caller as owner.
EXPECTED = {
    "admin": (200, 200),
    "person with a bearer token": (200, 403),
    "person with a session cookie": (200, 403),
    "service account": (403, 403),
    "API token": (403, 403),
}
# What a 403 says after "Namespace NS does not exist, and ".
DENIED = {
    "person with a bearer token": "only admins can create namespaces",
    "person with a session cookie": "only admins can create namespaces",
    "service account": "service accounts (client:approving-app) cannot create namespaces",
    "API token": "API tokens cannot create namespaces",
}
OWNER = {
    "admin": ADMIN,
    "person with a bearer token": USER_EMAIL,
    "person with a session cookie": USER_EMAIL,
}


@dataclass
class Platform:
    """A running ``modelport up`` with the admin's generated password."""

    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    admin_password: str
    self_service: str

    def cli(self, *args: str) -> str:
        """A local admin command (``modelport namespaces ...``) on the platform's data."""
        argv = [sys.executable, "-m", "modelport", *args, "--data-dir", str(self.data_dir)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module", params=["on", "off"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp(f"self-service-{request.param}")
    config = work / "dex.yaml"
    config.write_text(DEX_CONFIG)
    argv = [
        sys.executable,
        "-m",
        "modelport",
        "up",
        "--port",
        "0",
        "--data-dir",
        str(work / "data"),
    ]
    argv += ["--namespace-self-service", request.param]
    proc, found, _ = start_and_read(
        [*argv, "--config", str(config)],
        # No MODELPORT_ADMIN_PASSWORD: the platform generates one and prints it once.
        {"url": r"modelport platform: (http://\S+)", "password": r"^password:\s+(\S+)"},
        ready="modelport platform:",
    )
    yield Platform(proc, found["url"], work / "data", found["password"], request.param)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _password_token(p: Platform, email: str, password: str) -> dict[str, str]:
    return password_grant(p.url, email, password)


def _service_account(p: Platform) -> dict[str, str]:
    r = httpx.post(
        f"{p.url}/dex/token", data={"grant_type": "client_credentials"}, auth=SERVICE_ACCOUNT
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _headers(p: Platform, caller: str) -> dict[str, str]:
    if caller == "admin":
        return _password_token(p, ADMIN, p.admin_password)
    if caller == "person with a bearer token":
        return _password_token(p, USER_EMAIL, USER_PASSWORD)
    if caller == "person with a session cookie":
        # Kubeflow's login flow through the gateway: authservice_session, no Authorization.
        gateway = GatewayProcess(p.proc, p.url, [], p.data_dir)
        session, _ = five_step_login(gateway, "/api/v1/namespaces")
        return {"Cookie": f"authservice_session={session}"}
    if caller == "service account":
        return _service_account(p)
    # Edit role in an existing namespace: a token is never enough for a new one.
    owner = ["--owner", ADMIN, "--role", "edit"]
    return {
        "Authorization": f"Bearer {p.cli('tokens', 'create', '--namespace', 'default', *owner)}"
    }


def _slug(caller: str) -> str:
    """The namespace a caller tries to create: its name, as a DNS label."""
    return re.sub(r"[^a-z]+", "-", caller.lower())


def _isvc(namespace: str, name: str = "iris") -> str:
    # Scaled to zero from the start: the platform never fetches the model here.
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        '  annotations:\n    autoscaling.knative.dev/initial-scale: "0"\n'
        "spec:\n  predictor:\n    minReplicas: 0\n"
        "    model:\n      modelFormat: {name: sklearn}\n      storageUri: pvc://models/iris\n"
    )


def _apply(p: Platform, headers: dict[str, str], text: str) -> httpx.Response:
    return httpx.post(f"{p.url}/api/v1/apply", content=text, headers=headers, timeout=30)


def _namespaces(p: Platform) -> dict[str, str]:
    """Every namespace and its owner, as the admin sees them."""
    admin = _password_token(p, ADMIN, p.admin_password)
    r = httpx.get(f"{p.url}/api/v1/namespaces", headers=admin)
    assert r.status_code == 200, r.text
    return {item["name"]: item["owner"] for item in r.json()["items"]}


def test_who_creates_a_namespace_by_applying(platform: Platform) -> None:
    column = 0 if platform.self_service == "on" else 1
    responses = {c: _apply(platform, _headers(platform, c), _isvc(_slug(c))) for c in EXPECTED}
    # Compared as one table, so a failure shows every caller's outcome for this setting.
    statuses = {caller: r.status_code for caller, r in responses.items()}
    assert statuses == {caller: row[column] for caller, row in EXPECTED.items()}
    namespaces = _namespaces(platform)
    for caller, r in responses.items():
        namespace = _slug(caller)
        if r.status_code == 200:
            assert namespaces[namespace] == OWNER[caller]
            continue
        assert namespace not in namespaces
        message = r.json()["error"]
        assert f"Namespace {namespace} does not exist, and {DENIED[caller]}" in message
        owner = USER_EMAIL if caller.startswith("person") else "EMAIL"
        assert f"`modelport namespaces create {namespace} --owner {owner}`" in message


@pytest.mark.parametrize("platform", ["on"], indirect=True)
def test_a_service_account_deploys_once_given_a_namespace_as_the_403_says(
    platform: Platform,
) -> None:
    headers = _service_account(platform)
    r = _apply(platform, headers, _isvc("robots"))
    assert r.status_code == 403, r.text
    # Run exactly the commands the message gives, as the admin would.
    commands = re.findall(r"`modelport ([^`]+)`", r.json()["error"])
    assert [c.split()[:2] for c in commands] == [
        ["namespaces", "create"],
        ["namespaces", "add-contributor"],
    ]
    for command in commands:
        platform.cli(*command.replace("EMAIL", ADMIN).split())
    assert _apply(platform, headers, _isvc("robots")).status_code == 200
    assert _namespaces(platform)["robots"] == ADMIN
    # One document for a namespace it may not create refuses the whole stream.
    both = _isvc("robots", "second") + "---\n" + _isvc("robots-two")
    r = _apply(platform, headers, both)
    assert r.status_code == 403, r.text
    listed = httpx.get(
        f"{platform.url}/api/v1/namespaces/robots/inferenceservices", headers=headers
    )
    assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["iris"]
