"""`modelport up` under test, once per backend (process and ray), each signed in as its
first admin: start it, apply InferenceServices, wait for their replicas, stop it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.control.platform import is_ready, isvc_doc, wait_for
from bench.control.settings import ADMIN, ADMIN_PASSWORD
from bench.lib import procs
from bench.lib.procs import log
from bench.lib.servers import modelport_env

NS = "bench"
START_TIMEOUT_S = 120.0


class Up:
    """One `modelport up` process (its own session, data and config folders) and a CLI
    environment logged in to it as the admin."""

    def __init__(self, py: Path, work: Path, name: str, extra: list[str]) -> None:
        self.name = name
        self.dir = work / name
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "config").mkdir(parents=True)
        self.log_path = work / "logs" / f"{name}.log"
        base = {k: v for k, v in modelport_env().items() if not k.startswith("MODELPORT_")}
        self.env = {
            **base,
            "MODELPORT_ADMIN_EMAIL": ADMIN,
            "MODELPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MODELPORT_CONFIG_DIR": str(self.dir / "config"),
            "PYTHONUNBUFFERED": "1",
        }
        self.py = str(py)
        self.command = [self.py, "-m", "modelport", "up", "--port", "0"]
        self.command += ["--data-dir", str(self.dir / "data"), *extra]
        log(f"{name}: starting: {' '.join(self.command)}")
        t0 = time.monotonic()
        self.proc = procs.spawn(self.command, self.log_path, self.dir / "cwd", self.env)
        url = wait_for(self._url, START_TIMEOUT_S, 0.1)
        if not url:
            raise RuntimeError(f"{name} did not start; log {self.log_path}:\n{self.tail()}")
        self.start_s = round(time.monotonic() - t0, 2)
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.env["MODELPORT_URL"] = url
        self.cli("login", url, "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
        self.token = self.cli("token").stdout.strip()
        log(f"{name}: {url} (pid {self.proc.pid}), up in {self.start_s} s")

    def _url(self) -> str | None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited; log {self.log_path}:\n{self.tail()}")
        found = re.search(r"modelport platform: (http://\S+)", self.log_text())
        return found.group(1) if found else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n: int = 25) -> str:
        return procs.tail(self.log_path, n)

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`modelport ARGS` as the logged-in admin; raises with its output when it fails."""
        r = subprocess.run(
            [self.py, "-m", "modelport", *args], capture_output=True, text=True,
            env=self.env, input=input, cwd=self.dir, timeout=180,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"modelport {' '.join(args)}: {(r.stderr or r.stdout)[-800:]}")
        return r

    @property
    def bearer(self) -> str:
        return f"Authorization: Bearer {self.token}"

    def apply(
        self,
        name: str,
        model_dir: Path,
        predictor: Mapping[str, Any],
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        doc = isvc_doc(
            name, NS, model_dir, predictor=dict(predictor), annotations=dict(annotations or {})
        )
        f = self.dir / f"{name}-{time.monotonic_ns()}.yaml"
        f.write_text(doc)
        self.cli("apply", "-f", str(f))

    def delete(self, name: str) -> None:
        self.cli("delete", "inferenceservice", name, "-n", NS)

    def replicas(self, name: str) -> tuple[bool, int] | None:
        """(ready, replicas) of a service in the bench namespace, None when it is absent."""
        st, _, data = procs.http_req(
            self.port, "GET", f"/api/v1/namespaces/{NS}/inferenceservices",
            headers={"Authorization": f"Bearer {self.token}"}, timeout=60,
        )  # fmt: skip
        if st != 200:
            raise RuntimeError(f"{self.name}: list services: HTTP {st}: {data[:300]!r}")
        for item in json.loads(data)["items"]:
            if item["metadata"]["name"] == name:
                return is_ready(item), int((item.get("status") or {}).get("replicas", 0))
        return None

    def wait_replicas(self, name: str, count: int, timeout: float = 180.0) -> float:
        """Seconds until the service is ready with exactly `count` replicas (0: scaled to
        zero); raises when that does not happen within `timeout`."""
        t0 = time.monotonic()
        want = (True, count)
        if not wait_for(lambda: self.replicas(name) == want, timeout, 0.25):
            raise RuntimeError(
                f"{self.name}: {name} not at {count} ready replica(s) after {timeout:.0f} s "
                f"(now {self.replicas(name)}); log:\n{self.tail()}"
            )
        return round(time.monotonic() - t0, 2)

    def stop(self) -> None:
        """SIGTERM the session (the platform stops its replicas), SIGKILL what is left."""
        procs.kill_tree(self.proc, grace=30.0)
