"""`modelport up` under test: start it, talk to its APIs, apply services, and stop every
process it made."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.control.measure import alive, children_map, cmdline, comm, descendants, start_boottime
from bench.control.settings import ADMIN, ADMIN_PASSWORD, PLATFORM_START_TIMEOUT, log
from bench.lib import procs

# =========================================================================== platform
PLATFORMS: list[Platform] = []

T = TypeVar("T")


class Platform:
    """A `modelport up` process, its zygote, and a CLI environment logged in as the admin."""

    def __init__(self, py: str, work: Path, name: str, grace: float):
        self.py = py
        self.name = name
        self.dir = work / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.data = self.dir / "data"
        self.config = self.dir / "config"
        self.log_path = work / "logs" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True)
        self.config.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
        self.env = {
            **env,
            "MODELPORT_ADMIN_EMAIL": ADMIN,
            "MODELPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MODELPORT_CONFIG_DIR": str(self.config),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [py, "-m", "modelport", "up", "--port", "0", "--data-dir", str(self.data)]
        cmd += ["--scale-to-zero-grace", str(grace)]
        self.cmd = cmd
        log(f"{name}: starting: {' '.join(cmd)}")
        t0 = time.monotonic()
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=self.env,
                start_new_session=True,
            )
        PLATFORMS.append(self)
        self.url = None
        while time.monotonic() - t0 < PLATFORM_START_TIMEOUT:
            m = re.search(r"modelport platform: (http://\S+)", self.log_text())
            if m:
                self.url = m.group(1)
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.url:
            raise RuntimeError(f"{name} did not start; log {self.log_path}:\n{self.tail()}")
        self.start_s = round(time.monotonic() - t0, 2)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.env["MODELPORT_URL"] = self.url
        self.cli_bin = self._cli_bin()
        self.cli("login", self.url, "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
        self.token = self.cli("token").stdout.strip()
        self.zygote = self._find_zygote()
        log(
            f"{name}: {self.url} (pid {self.proc.pid}, zygote {self.zygote}), "
            f"up in {self.start_s} s"
        )

    def _cli_bin(self) -> list[str]:
        script = Path(self.py).parent / "modelport"
        return [str(script)] if script.exists() else [self.py, "-m", "modelport"]

    def _find_zygote(self) -> int | None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid in children_map().get(self.proc.pid, []):
                if "modelport.control.backends.zygote" in cmdline(pid):
                    return pid
            time.sleep(0.1)
        return None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n: int = 25) -> str:
        return procs.tail(self.log_path, n)

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [*self.cli_bin, *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            cwd=self.dir,
            timeout=180,
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"modelport {' '.join(args)}: {(r.stderr or r.stdout)[-800:]}")
        return r

    def api(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, dict[str, str], bytes]:
        hd = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return procs.http_req(self.port, method, path, body, hd, timeout=timeout)

    def api_json(self, path: str) -> Any:
        st, _, data = self.api("GET", path)
        if st != 200:
            raise RuntimeError(f"GET {path}: HTTP {st}: {data[:300]!r}")
        return json.loads(data)

    def replicas(self) -> list[int]:
        """Live replica processes (children of the zygote)."""
        if not self.zygote:
            return []
        return [p for p in children_map().get(self.zygote, []) if alive(p)]

    def replica_pid(self, service: str) -> int | None:
        want = f"mp:{service}"[:15]
        pids = [p for p in self.replicas() if comm(p) == want]
        return max(pids, key=lambda p: start_boottime(p) or 0) if pids else None

    def replica_log(self, ns: str, service: str) -> Path | None:
        logs = sorted(
            (self.data / "logs" / ns / service).glob("*-predictor-*.log"),
            key=lambda p: p.stat().st_mtime,
        )
        return logs[-1] if logs else None

    def stop(self) -> None:
        """SIGTERM (the platform stops its replicas and zygote), SIGKILL what is left."""
        if self in PLATFORMS:
            PLATFORMS.remove(self)
        kids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: no exit 30 s after SIGTERM; SIGKILL")
                self.proc.kill()
                self.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in kids):
            time.sleep(0.1)
        left = [p for p in kids if alive(p)]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if left:
            log(f"{self.name}: killed {len(left)} leftover process(es): {left}")


def stop_everything() -> None:
    for p in list(PLATFORMS):
        try:
            p.stop()
        except Exception as e:  # noqa: BLE001 - keep stopping the others
            log(f"stopping {p.name}: {e}")
    procs.kill_all()


def isvc_doc(
    name: str, ns: str, uri: Path, *, predictor: dict[str, Any], annotations: dict[str, Any]
) -> str:
    ann = "".join(f'    {k}: "{v}"\n' for k, v in annotations.items())
    pred = "".join(f"    {k}: {v}\n" for k, v in predictor.items())
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n  namespace: {ns}\n"
        + (f"  annotations:\n{ann}" if ann else "")
        + "spec:\n  predictor:\n"
        + pred
        + "    model:\n      modelFormat:\n        name: sklearn\n"
        + f"      storageUri: {uri}\n"
    )


def is_ready(item: dict[str, Any]) -> bool:
    conds = (item.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def wait_for(fn: Callable[[], T], timeout: float, every: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(every)


def services_state(pf: Platform, ns: str | None = None) -> dict[tuple[str, str], tuple[bool, int]]:
    path = f"/api/v1/namespaces/{ns}/inferenceservices" if ns else "/api/v1/inferenceservices"
    items = pf.api_json(path)["items"]
    return {
        (i["metadata"]["namespace"], i["metadata"]["name"]): (
            is_ready(i),
            (i.get("status") or {}).get("replicas", 0),
        )
        for i in items
    }
