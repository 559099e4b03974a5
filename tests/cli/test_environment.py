"""The CLI's environment variables (named and read in modelport/settings), through the real
``modelport`` command against a stand-in platform on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

CLUSTER = {"server": "https://127.0.0.1:8443/k8s", "certificate-authority-data": "Q0E="}


class Platform:
    """Answers the control API's list and the kube API's cluster entry; records requests."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                platform.seen.append((self.command, self.path, self.headers["Authorization"]))
                body = {"cluster": CLUSTER} if self.path.startswith("/k8s/") else {"items": []}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def platform() -> Iterator[Platform]:
    stand_in = Platform()
    thread = threading.Thread(target=stand_in.server.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env},
    )


def save_login(config_dir: Path, url: str, token: str = "the-id-token") -> None:
    entry = {"id_token": token, "access_token": "a", "refresh_token": "r"}
    config_dir.mkdir(parents=True, exist_ok=True)
    login = {url: {**entry, "expires_at": time.time() + 3600}}
    (config_dir / "credentials.json").write_text(json.dumps(login))


def test_url_namespace_and_token_come_from_the_environment(platform: Platform) -> None:
    done = run(
        "get",
        "isvc",
        MODELPORT_URL=platform.url,
        MODELPORT_NAMESPACE="team-a",
        MODELPORT_TOKEN="api-token",
    )
    assert done.returncode == 0, done.stderr
    assert platform.seen == [
        ("GET", "/api/v1/namespaces/team-a/inferenceservices", "Bearer api-token")
    ]


def test_flags_win_over_the_environment(platform: Platform) -> None:
    done = run(
        "get",
        "isvc",
        "--url",
        platform.url,
        "-n",
        "team-b",
        MODELPORT_URL="http://127.0.0.1:9",
        MODELPORT_NAMESPACE="team-a",
        MODELPORT_TOKEN="api-token",
    )
    assert done.returncode == 0, done.stderr
    assert [path for _, path, _ in platform.seen] == ["/api/v1/namespaces/team-b/inferenceservices"]


def test_without_a_token_variable_the_saved_login_is_sent(
    platform: Platform, tmp_path: Path
) -> None:
    save_login(tmp_path, platform.url, token="saved-token")
    done = run("get", "ns", MODELPORT_URL=platform.url, MODELPORT_CONFIG_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert platform.seen == [("GET", "/api/v1/namespaces", "Bearer saved-token")]


def test_token_reads_the_url_and_the_config_dir_from_the_environment(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8765"
    save_login(tmp_path, url)
    done = run("token", MODELPORT_URL=url, MODELPORT_CONFIG_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the-id-token\n"


def test_config_dir_defaults_to_xdg_config_home(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8765"
    save_login(tmp_path / "modelport", url)
    done = run("token", url, XDG_CONFIG_HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the-id-token\n"


def test_kubeconfig_reads_url_namespace_and_config_dir(platform: Platform, tmp_path: Path) -> None:
    save_login(tmp_path, platform.url)
    done = run(
        "kubeconfig",
        MODELPORT_URL=platform.url,
        MODELPORT_NAMESPACE="team-a",
        MODELPORT_CONFIG_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert config["contexts"][0]["context"]["namespace"] == "team-a"
    assert config["clusters"][0]["cluster"] == CLUSTER
    plugin = config["users"][0]["user"]["exec"]
    assert plugin["args"][-1] == platform.url
    assert plugin["env"] == [{"name": "MODELPORT_CONFIG_DIR", "value": str(tmp_path.resolve())}]
    assert platform.seen == [("GET", "/k8s/modelport/cluster", "Bearer the-id-token")]


def test_help_names_the_variables() -> None:
    text = " ".join(run("get", "--help").stdout.split())
    assert "[env var: MODELPORT_NAMESPACE]" in text
    assert "[env var: MODELPORT_URL]" in text
