"""The whole platform (`modelport up`) as a real process, and the CLI run against it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

ADMIN = "admin@example.com"
ADMIN_PASSWORD = "admin-password-123"


@dataclass
class PlatformProcess:
    """A running ``modelport up`` and a CLI environment logged in to it as the admin."""

    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    env: dict[str, str]
    output: list[str] = field(default_factory=list)

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "modelport", *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            cwd=ROOT,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"modelport {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )
        return result

    def token(self) -> str:
        return self.cli("token").stdout.strip()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return "".join(self.output)


def start_platform(
    data_dir: Path, config_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> PlatformProcess:
    """Start ``modelport up`` on a free port and log the CLI in as the admin."""
    full_env = {
        **os.environ,
        "MODELPORT_ADMIN_EMAIL": ADMIN,
        "MODELPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MODELPORT_CONFIG_DIR": str(config_dir),
        **(env or {}),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelport",
            "up",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--scale-to-zero-grace",
            "1",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=full_env,
    )
    lines: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r"modelport platform: (http://\S+)", line)
            if m:
                found["url"] = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60) or "url" not in found:
        proc.kill()
        raise RuntimeError("modelport up did not start:\n" + "".join(lines))
    cli_env = {**full_env, "MODELPORT_URL": found["url"]}
    platform = PlatformProcess(proc, found["url"], data_dir, cli_env, lines)
    platform.cli("login", "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
    return platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("platform")
    running = start_platform(work / "data", work / "config")
    yield running
    running.stop()


def isvc_yaml(
    name: str, storage_uri: str, *, namespace: str = "default", **predictor: object
) -> str:
    """An sklearn InferenceService in KServe's new-style (model:) form."""
    extra = "".join(f"    {k}: {v}\n" for k, v in predictor.items())
    annotations = ""
    if predictor.get("minReplicas") == 0:
        # Knative's shortest stable window, so tests see scale-to-zero within seconds.
        annotations = '  annotations:\n    autoscaling.knative.dev/window: "6s"\n'
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n{annotations}"
        "spec:\n"
        "  predictor:\n"
        f"{extra}"
        "    model:\n"
        "      modelFormat:\n        name: sklearn\n"
        f"      storageUri: {storage_uri}\n"
    )


def wait_ready(
    platform: PlatformProcess, name: str, namespace: str = "default", timeout: float = 90
) -> dict:
    """Poll the control API until the service's Ready condition is True; its object."""
    deadline = time.monotonic() + timeout
    item: dict = {}
    with platform.client() as c:
        while time.monotonic() < deadline:
            r = c.get(f"/api/v1/namespaces/{namespace}/inferenceservices/{name}")
            if r.status_code == 200:
                item = r.json()
                ready = [x for x in item["status"]["conditions"] if x["type"] == "Ready"]
                if ready and ready[0]["status"] == "True":
                    return item
            time.sleep(0.2)
    raise AssertionError(
        f"{name} not ready in {timeout} s: {item.get('status')}\n{platform.log()[-3000:]}"
    )
