"""What runs inside a replica's Ray actor, on whichever node Ray placed it: the host of one
model server process. It picks the port on its node, starts ``launch.py`` there with the
launch request in a memory file (never on a command line), keeps the output in a node-local
log the platform copies, and stops the whole process group when asked — ``ray.kill`` alone
would leave the model server running.

The model server is confined as on one machine (``confine.py``), and more: Ray's own services
accept any local client without a credential by default (a driver can list, kill and start
actors on every node), so the replica may open no outbound TCP connection except to its
predictor, and Ray's session folder and ``/dev/shm`` (the raylet's and object store's Unix
sockets) are covered by empty folders in its mount namespace. docs/ray.md says more.

This module is imported by Ray workers; it imports Ray only inside the methods that need it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# What the replica's interpreter starts with (its real environment is in the request).
_START_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
MAX_LOG_CHUNK = 1 << 20
# Where replicas keep their private folders and logs on a node (not under Ray's session
# folder, which the replica cannot see).
NODE_DIR_ENV = "MODELPORT_RAY_NODE_DIR"
# The address replicas on a node listen on and the gateway sends to [default: the node's
# address as Ray reports it]; set in the environment of `ray start` on that node.
NODE_ADDRESS_ENV = "MODELPORT_RAY_NODE_ADDRESS"
NODE_CACHE_ENV = "MODELPORT_RAY_NODE_CACHE_GB"


# Actors of one node unpack models one at a time (they share the worker's module only when
# they share a process, so the rename into place is what makes it safe between processes).
_cache_lock = threading.Lock()


class LaunchError(RuntimeError):
    """The replica cannot start on this node; the message says why, for ``describe``."""


class ReplicaHost:
    """One replica's actor: owns the model server process it starts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.fingerprint = ""
        self._lock = threading.Lock()
        node_dir = os.environ.get(NODE_DIR_ENV) or os.path.join(
            tempfile.gettempdir(), "modelport-ray"
        )
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in name)
        self.home = Path(node_dir) / safe
        self.log_path = Path(node_dir) / "logs" / f"{safe}.log"

    def launch(self, request: dict[str, Any], fingerprint: str) -> dict[str, Any]:
        """Start the model server (or, when one started from the same request runs, report
        it: a restarted platform adopts what runs). Returns where it listens."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                if fingerprint == self.fingerprint:
                    return {**self.info, "adopted": True}
                self._stop_process(10.0)
            self.fingerprint = fingerprint
            self.info = self._start(request)
            return {**self.info, "adopted": False}

    def _start(self, request: dict[str, Any]) -> dict[str, Any]:
        import ray
        from ray._private import worker

        here = worker.global_worker.node
        assert here is not None, "not in a Ray worker"
        ip = os.environ.get(NODE_ADDRESS_ENV) or str(here.node_ip_address)
        node = ray.get_runtime_context().get_node_id()
        uid = (request.get("confinement") or {}).get("uid")
        for shipped in request.pop("ship", None) or ():
            request = _with_model(request, shipped["path"], self._receive(shipped, uid))
        serve = request["serve"]
        missing = [p for p in _model_paths(request) if not os.path.exists(p)]
        if missing:
            raise LaunchError(
                f"the model is not on Ray node {ip} ({missing[0]} is missing): a path "
                "under --ray-shared-dir must be mounted at the same place on every node"
            )
        port = _free_port(ip)
        serve["settings"].update(host=ip, http_port=port)
        private = self._private_dir(request.get("confinement"))
        env = dict(request["env"])
        env["HOME"] = env["TMPDIR"] = str(private)
        # Ray chooses the GPUs of an actor with num_gpus; the replica uses those.
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        request = {**request, "serve": serve, "env": env}
        if request.get("confinement"):
            request["confinement"] = {
                **request["confinement"],
                "port": port,
                "private_dir": str(private),
                "cover": _ray_folders(),
            }
        self.proc = _spawn(request, self.log_path)
        return {"ip": ip, "port": port, "pid": self.proc.pid, "node": node, "key": request["key"]}

    def _receive(self, shipped: dict[str, Any], uid: int | None) -> str:
        """This node's copy of a model the platform put in Ray's object store, unpacked
        once per content key into the node's model cache (readable by the replica's gid)."""
        import ray

        models = self.home.parent / "models"
        # Granted to one namespace's gid: another namespace gets a copy of its own.
        target = models / (shipped["key"] if uid is None else f"{shipped['key']}-{uid}")
        name = Path(shipped["path"]).name
        with _cache_lock:
            if not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
                unpacking = models / f".{shipped['key']}.{os.getpid()}"
                shutil.rmtree(unpacking, ignore_errors=True)
                unpacking.mkdir(parents=True, mode=0o750)
                data: bytes = ray.get(shipped["ref"][0])
                with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                    archive.extractall(unpacking, filter="data")
                (unpacking / ".complete").touch()
                if uid is not None and os.geteuid() == 0:
                    _grant(unpacking, uid)
                try:
                    unpacking.rename(target)
                except OSError:  # another actor's copy landed first: the same content
                    shutil.rmtree(unpacking, ignore_errors=True)
            os.utime(target)  # when it was last used: pruning goes by it
            prune(models, keep=target, limit_bytes=node_cache_limit())
        return str(target / name)

    def _private_dir(self, confinement: dict[str, Any] | None) -> Path:
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True, mode=0o700)
        uid = (confinement or {}).get("uid")
        if uid is not None and os.geteuid() == 0:
            os.chown(self.home, uid, uid)
        return self.home

    def wait_exit(self) -> int:
        """Block until the model server exits; its exit code (negative: a signal)."""
        proc = self.proc
        if proc is None:
            return -1
        return proc.wait()

    def read_log(self, offset: int) -> tuple[bytes, int]:
        """The log's bytes from ``offset`` (at most 1 MiB) and the offset after them; from
        the start again when the log is shorter than ``offset`` (a new one)."""
        try:
            with self.log_path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < offset:
                    offset = 0
                f.seek(offset)
                data = f.read(MAX_LOG_CHUNK)
        except FileNotFoundError:
            return b"", 0
        return data, offset + len(data)

    def stop(self, grace_s: float = 10.0) -> int | None:
        with self._lock:
            return self._stop_process(grace_s)

    def _stop_process(self, grace_s: float) -> int | None:
        """SIGTERM to the process group (the server drains), SIGKILL after ``grace_s``."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)
        return proc.returncode


def node_cache_limit() -> int:
    """Bytes of models a node keeps (MODELPORT_RAY_NODE_CACHE_GB in `ray start`'s
    environment, default 50)."""
    try:
        return int(float(os.environ.get(NODE_CACHE_ENV, "50")) * 2**30)
    except ValueError:
        return 50 * 2**30


def prune(models: Path, *, keep: Path, limit_bytes: int) -> list[Path]:
    """Delete the least recently used model copies until the rest fit in ``limit_bytes``;
    never ``keep``. A running server has its model loaded: deleting its files does not
    disturb it, and its next start copies the model again. Returns what was deleted."""
    copies = []
    for entry in models.iterdir():
        if entry.is_dir() and not entry.name.startswith("."):
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            copies.append((entry.stat().st_mtime, entry, size))
    total = sum(size for _, _, size in copies)
    deleted = []
    for _, entry, size in sorted(copies):
        if total <= limit_bytes:
            break
        if entry != keep:
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
            deleted.append(entry)
    return deleted


def _with_model(request: dict[str, Any], original: str, local: str) -> dict[str, Any]:
    """The request with the platform's path of a model replaced by this node's copy."""
    serve = {**request["serve"]}
    if serve["path"] == original:
        serve["path"] = local
    out = {**request, "serve": serve}
    if request.get("confinement"):
        paths = [local if p == original else p for p in request["confinement"]["model_paths"]]
        out["confinement"] = {**request["confinement"], "model_paths": paths}
    return out


def _grant(folder: Path, gid: int) -> None:
    """Let the replica's gid (and no one else) read a model copy made as root."""
    for item in [folder, *folder.rglob("*")]:
        if item.is_symlink():
            continue
        os.chown(item, 0, gid)
        os.chmod(item, 0o750 if item.is_dir() else 0o640)


def _model_paths(request: dict[str, Any]) -> list[str]:
    paths = [str(request["serve"]["path"])]
    if request.get("confinement"):
        paths += list(request["confinement"].get("model_paths") or ())
    return paths


def _ray_folders() -> list[str]:
    """Ray's folders of this node whose sockets a replica must not reach."""
    from ray._private import worker

    # The temp folder holds every session's sockets (and session_latest).
    here = worker.global_worker.node
    assert here is not None, "not in a Ray worker"
    return ["/dev/shm", str(Path(here.get_temp_dir_path()).resolve())]


def _free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def _spawn(request: dict[str, Any], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.memfd_create("modelport-launch", os.MFD_CLOEXEC)
    os.write(fd, json.dumps(request).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    with log_path.open("ab") as log:
        log.write(f"--- starting at {time.ctime()}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "modelport.control.backends.launch"],
                stdin=fd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if k in _START_ENV},
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(fd)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
