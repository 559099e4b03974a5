"""`modelport login/token/logout` and the notebook helper against a real gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers.kubeflow import USER_EMAIL, USER_PASSWORD
from tests.helpers.servers import CliServer

INFER = {
    "inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[6.8, 2.8, 4.8, 1.4]]}
    ]
}


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    path = tmp_path / "cfg"
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(path))
    return path


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


def test_login_token_logout(gateway: CliServer, config_dir):
    r = cli(
        "login",
        gateway.url,
        "--username",
        USER_EMAIL,
        "--password-stdin",
        stdin=USER_PASSWORD + "\n",
    )
    assert r.returncode == 0, r.stderr
    stored = config_dir / "credentials.json"
    assert stored.stat().st_mode & 0o077 == 0
    assert USER_PASSWORD not in stored.read_text()
    token = cli("token", gateway.url)
    assert token.returncode == 0
    import httpx

    ok = httpx.post(
        f"{gateway.url}/v2/models/sklearn-iris/infer",
        json=INFER,
        headers={"Authorization": f"Bearer {token.stdout.strip()}"},
    )
    assert ok.status_code == 200
    assert cli("logout", gateway.url).returncode == 0
    after = cli("token", gateway.url)
    assert after.returncode == 1 and "not logged in" in after.stderr


def test_wrong_password_is_one_line_error(gateway: CliServer, config_dir):
    r = cli("login", gateway.url, "-u", USER_EMAIL, "--password-stdin", stdin="wrong\n")
    assert r.returncode == 1
    assert "Invalid username or password" in r.stderr
    assert "wrong" not in r.stderr


def test_notebook_helper_refreshes_silently(gateway: CliServer, config_dir):
    from modelport.client import authenticated_client, login_with_password

    login_with_password(gateway.url, USER_EMAIL, USER_PASSWORD)
    # pretend the token expired: the helper must refresh it (rotating the refresh token)
    path = config_dir / "credentials.json"
    data = json.loads(path.read_text())
    entry = data[gateway.url]
    old_refresh = entry["refresh_token"]
    entry["expires_at"] = time.time() - 1
    path.write_text(json.dumps(data))
    with authenticated_client(gateway.url) as http:
        r = http.post("/v2/models/sklearn-iris/infer", json=INFER)
        assert r.status_code == 200
    assert json.loads(path.read_text())[gateway.url]["refresh_token"] != old_refresh


def test_login_with_device_flow(gateway: CliServer, config_dir):
    import re
    from urllib.parse import urlsplit

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "modelport", "login", gateway.url, "--device"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        line = proc.stdout.readline()
        link = re.search(r"Open (\S+)", line).group(1)
        code = re.search(r"code=([A-Z-]+)", link).group(1)
        with httpx.Client(base_url=gateway.url, follow_redirects=False, timeout=30) as b:
            b.get(urlsplit(link).path, params={"user_code": code})
            to_auth = b.post("/dex/device/auth/verify_code", data={"user_code": code})
            login_url = b.get(to_auth.headers["location"]).headers["location"]
            approved = b.post(login_url, data={"login": USER_EMAIL, "password": USER_PASSWORD})
            done = b.get(b.get(approved.headers["location"]).headers["location"])
            assert "Login Successful" in done.text
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "logged in" in out
    finally:
        proc.kill()
    assert cli("token", gateway.url).returncode == 0
