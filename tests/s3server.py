"""A real S3-compatible server for tests: moto's server mode in a subprocess.

Usage (any test module may import this; it needs only the standard library and moto)::

    from tests.s3server import start_s3_server

    server = start_s3_server()
    try:
        env = server.env()          # AWS_* / S3_* variables pointing at the server
        boto3.client("s3", **server.client_kwargs()).create_bucket(Bucket="models")
        ...
    finally:
        server.stop()

``tests/control/conftest.py`` exposes a session-scoped ``s3_server`` fixture built on it.
The server accepts any credentials until ``require_auth()`` is called; after that only
access keys of IAM users created on it are valid (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``),
so call it only on a private server, never on the shared fixture.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

# Any value works while auth is off; these are the ones env()/client_kwargs() hand out.
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"
START_TIMEOUT_S = 30.0


@dataclass
class S3Server:
    """A running moto server: its endpoint URL and how to stop it."""

    url: str
    proc: subprocess.Popen[bytes] = field(repr=False)

    def env(self, **overrides: str) -> dict[str, str]:
        """KServe-style S3 environment variables for this server (overrides win)."""
        env = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
        }
        env.update(overrides)
        return env

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client("s3", **kwargs)`` against this server."""
        return {
            "endpoint_url": self.url,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "region_name": REGION,
        }

    def require_auth(self) -> None:
        """From now on check signatures and IAM policies (moto's reset-auth endpoint)."""
        _post(f"{self.url}/moto-api/reset-auth", b"0")

    def reset(self) -> None:
        """Forget every bucket, object and IAM user."""
        _post(f"{self.url}/moto-api/reset", b"")

    def stop(self) -> None:
        """Terminate the server process and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_s3_server(host: str = "127.0.0.1", attempts: int = 3) -> S3Server:
    """Start ``python -m moto.server`` on a free port and return once it answers."""
    last_error = "not started"
    for _ in range(attempts):
        port = _free_port(host)
        # A file, not a pipe: moto logs every request and nobody drains a pipe after startup.
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = S3Server(url=f"http://{host}:{port}", proc=proc)
        try:
            _wait_until_up(server)
            return server
        except RuntimeError as exc:
            # Another process may have taken the port between probing and binding.
            log.seek(0)
            last_error = f"{exc}: {log.read().decode(errors='replace').strip()[-500:]}"
            server.stop()
        finally:
            log.close()  # the child keeps its own descriptor
    raise RuntimeError(f"moto server did not start: {last_error}")


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_until_up(server: S3Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"exited with {server.proc.returncode}")
        try:
            with urllib.request.urlopen(f"{server.url}/moto-api/data.json", timeout=2):
                pass
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
            continue
        return
    raise RuntimeError(f"no answer from {server.url} within {START_TIMEOUT_S:.0f}s")


def _post(url: str, body: bytes) -> None:
    # Not form-encoded (urllib's default): Flask would consume the body as a form.
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
