"""``modelport kubeconfig`` and ``modelport token --exec-credential``: the kubeconfig kubectl
reads, and the ExecCredential its exec plugin prints (client.authentication.k8s.io/v1)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from modelport.cli.kubeconfig import build_kubeconfig, context_name
from tests.conftest import ROOT

URL = "http://127.0.0.1:8765"


def run(config_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MODELPORT_CONFIG_DIR": str(config_dir), **env},
    )


def save_login(config_dir: Path, expires_in: float = 3600.0) -> float:
    expires_at = time.time() + expires_in
    entry = {"id_token": "the-id-token", "access_token": "a", "refresh_token": "r"}
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "credentials.json").write_text(
        json.dumps({URL: {**entry, "expires_at": expires_at}})
    )
    return expires_at


def test_exec_credential_carries_the_token_and_its_expiry(tmp_path: Path):
    expires_at = save_login(tmp_path)
    done = run(tmp_path, "token", "--exec-credential", URL)
    assert done.returncode == 0, done.stderr
    cred = json.loads(done.stdout)
    assert cred["apiVersion"] == "client.authentication.k8s.io/v1"
    assert cred["kind"] == "ExecCredential"
    assert cred["status"]["token"] == "the-id-token"
    when = datetime.strptime(cred["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    # A minute early: kubectl runs the plugin again before the token is refused.
    assert abs(when.replace(tzinfo=UTC).timestamp() - (expires_at - 60)) < 2


def test_plain_token_is_unchanged(tmp_path: Path):
    save_login(tmp_path)
    done = run(tmp_path, "token", URL)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the-id-token\n"


def test_exec_credential_without_login_fails_with_a_reason(tmp_path: Path):
    done = run(tmp_path, "token", "--exec-credential", URL)
    assert done.returncode == 1
    assert "not logged in" in done.stderr
    assert done.stdout == ""


def test_kubeconfig_needs_a_login(tmp_path: Path):
    done = run(tmp_path, "kubeconfig", "--url", URL)
    assert done.returncode == 1
    assert f"modelport login {URL}" in done.stderr


def test_kubeconfig_without_a_platform_fails_with_a_reason(tmp_path: Path):
    save_login(tmp_path)
    done = run(tmp_path, "kubeconfig", "--url", URL)
    assert done.returncode == 1
    assert f"cannot ask {URL}" in done.stderr


CLUSTER = {"server": "https://127.0.0.1:8443/k8s", "certificate-authority-data": "Q0E="}


def test_kubeconfig_names_server_context_namespace_and_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    save_login(tmp_path)
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path))
    name = context_name(URL)
    config = build_kubeconfig(URL, cluster=CLUSTER, namespace="team-a", name=name)
    assert config["current-context"] == name == "modelport-127-0-0-1-8765"
    assert config["clusters"] == [{"name": name, "cluster": CLUSTER}]
    [context] = config["contexts"]
    assert context["context"] == {"cluster": name, "user": name, "namespace": "team-a"}
    [user] = config["users"]
    plugin = user["user"]["exec"]
    assert plugin["apiVersion"] == "client.authentication.k8s.io/v1"
    assert plugin["interactiveMode"] == "Never"
    assert plugin["args"][-3:] == ["token", "--exec-credential", URL]
    assert plugin["env"] == [{"name": "MODELPORT_CONFIG_DIR", "value": str(tmp_path.resolve())}]
    # The plugin command runs as written, from any PATH, and prints the credential.
    argv = [plugin["command"], *plugin["args"]]
    env = {"PATH": "/nonexistent", **{e["name"]: e["value"] for e in plugin["env"]}}
    cred = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert json.loads(cred.stdout)["status"]["token"] == "the-id-token", cred.stderr


def test_the_prefix_is_the_platforms():
    from modelport.cli.kubeconfig import KUBE_PREFIX as written
    from modelport.kube import KUBE_PREFIX as served

    assert written == served


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_the_kubeconfig(tmp_path: Path):
    config = build_kubeconfig(URL, cluster=CLUSTER, namespace="ns1", name="mp")
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    view = subprocess.run(
        ["kubectl", "config", "view", "--minify", "--raw", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"KUBECONFIG": str(path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert view.returncode == 0, view.stderr
    seen = json.loads(view.stdout)
    assert seen["current-context"] == "mp"
    assert seen["contexts"][0]["context"]["namespace"] == "ns1"
    assert seen["clusters"][0]["cluster"] == CLUSTER
    assert (
        seen["users"][0]["user"]["exec"]["command"] == config["users"][0]["user"]["exec"]["command"]
    )
