"""The local process backend: each replica is a model server process on a free
loopback port, confined before it loads its model (``confine.py``), answering only requests
that carry its key, its output appended to a log file the ``logs`` command reads."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from modelport.control.backends.confine import Confinement
from modelport.protocol.replica_key import REPLICA_KEY_HEADER
from modelport.settings import PREDICTOR_HOST_ENV, PREDICTOR_KEY_ENV, PREDICTOR_PROTOCOL_ENV

log = logging.getLogger("modelport.controller")

READY_POLL_S = 0.02


@dataclass(frozen=True)
class Placement:
    """What a replica needs of a node (resources.requests, else limits): used by backends
    that choose among nodes."""

    cpus: float | None = None
    memory_bytes: int | None = None
    gpus: int = 0
    # Node labels it must run on (nodeSelector), as (label, value) pairs.
    labels: tuple[tuple[str, str], ...] = ()


@dataclass
class ReplicaSpec:
    """What to run for one replica of a revision."""

    model_name: str
    model_path: Path
    server_format: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    max_batch_size: int | None = None
    max_latency_ms: float | None = None
    # For transformers: where the predictor listens, and how to talk to it.
    predictor_host: str | None = None
    predictor_protocol: str = "v1"
    predictor_key: str | None = None
    # What the replica may reach (None: unconfined, for tests of the backends alone).
    confinement: Confinement | None = None
    key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # NAMESPACE/SERVICE/PART-REVISION-SLOT: stable across platform restarts (the Ray backend
    # names its actors with it, and finds them again).
    replica_id: str = ""
    placement: Placement = field(default_factory=lambda: Placement())

    def serve(self, port: int) -> dict[str, Any]:
        """What ``launch.py`` serves: the model and the server's settings (ServerSettings
        fields). One worker, no gRPC: the gateway speaks REST to replicas."""
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "http_port": port,
            "enable_grpc": False,
            "workers": 1,
        }
        if self.max_batch_size is not None:
            settings["max_batch_size"] = self.max_batch_size
        if self.max_latency_ms is not None:
            settings["max_latency_ms"] = self.max_latency_ms
        return {
            "path": str(self.model_path),
            "name": self.model_name,
            "format": self.server_format,
            "settings": settings,
        }

    def environment(self) -> dict[str, str]:
        env = {**replica_base_env(), **self.env}
        if self.confinement is not None:
            # Libraries write caches under HOME and temporary files under TMPDIR: both go
            # to the one folder the replica may write.
            env["HOME"] = env["TMPDIR"] = self.confinement.private_dir
        if self.predictor_host:
            env[PREDICTOR_HOST_ENV] = self.predictor_host
            env[PREDICTOR_PROTOCOL_ENV] = self.predictor_protocol
        if self.predictor_key:
            env[PREDICTOR_KEY_ENV] = self.predictor_key
        return env

    def launch_request(self, port: int) -> bytes:
        """What ``launch.py`` reads: the model to serve, environment, key and confinement."""
        confinement = self.confinement
        if confinement is not None:
            confinement = dataclasses.replace(confinement, port=port)
        request: dict[str, Any] = {
            "serve": self.serve(port),
            "env": self.environment(),
            "key": self.key,
            "confinement": confinement.to_dict() if confinement else None,
        }
        return json.dumps(request).encode()


# What a model server inherits from the platform's environment: locale, paths, thread
# limits — never the platform's secrets (admin password, storage credentials, tokens).
INHERITED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "HOME", "VIRTUAL_ENV", "USER")
INHERITED_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "NUMEXPR_")


def replica_base_env() -> dict[str, str]:
    """The part of the platform's environment a replica starts with."""
    return {
        k: v
        for k, v in os.environ.items()
        if k in INHERITED_ENV or k.startswith(INHERITED_PREFIXES)
    }


class ServerProcess(Protocol):
    """What a Replica needs of its model server process, wherever it runs."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


class Replica:
    """One running (or exited) model server process."""

    def __init__(
        self,
        proc: ServerProcess,
        port: int,
        log_file: Path,
        model_name: str,
        key: str,
    ) -> None:
        self.proc = proc
        self.port = port
        self.log_file = log_file
        self.model_name = model_name
        self.key = key
        # Added by the gateway to every request it forwards here.
        self.key_header = (REPLICA_KEY_HEADER, key.encode())
        self.started_at = time.monotonic()
        self.ready = False
        # Told why a replica still waits to start (a Ray actor waiting for a node).
        self.on_wait: Callable[[str], None] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait_ready(self, timeout: float) -> bool:
        """Poll the V2 readiness endpoint until it answers 200, the process exits, or timeout.

        The model server loads its model before it listens, so "connection refused" just
        means "still loading".
        """
        deadline = time.monotonic() + timeout
        # The model's own readiness, not the server's: should another process have won the
        # race for this port, it does not serve this model name and is never taken for ours.
        url = f"http://{self.address}/v2/models/{self.model_name}/ready"
        headers = {REPLICA_KEY_HEADER.decode(): self.key}
        per_probe = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=per_probe, headers=headers) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    return False
                try:
                    async with client.get(url) as response:
                        if response.status == 200:
                            self.ready = True
                            return True
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(READY_POLL_S)
        return False

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (the server drains in-flight requests), SIGKILL after ``grace_s``."""
        if self.proc.returncode is not None:
            return
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), grace_s)
        except TimeoutError:
            _signal_group(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()

    def last_lines(self, count: int = 5) -> list[str]:
        return tail(self.log_file, count)


class ProcessBackend:
    """Starts replicas as child processes of the platform."""

    name = "process"
    keeps_replicas = False
    places_replicas = False

    async def open(self) -> None:
        """Nothing to prepare: each start runs a new interpreter."""

    async def close(self) -> None:
        """Nothing to release."""

    async def start(self, spec: ReplicaSpec) -> Replica:
        port = free_port()
        prepare_log(spec.log_file, port)
        request = request_file(spec.launch_request(port))
        with spec.log_file.open("ab") as log, os.fdopen(request, "rb") as stdin:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "modelport.control.backends.launch",
                stdin=stdin,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                # The request carries the real environment; this one is all /proc shows.
                env=replica_base_env(),
                # Its own process group, so stopping it also stops its workers.
                start_new_session=True,
            )
        return Replica(proc, port, spec.log_file, spec.model_name, spec.key)


class ForkedProcess:
    """A replica forked by the zygote: the parts of asyncio's Process that Replica uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = asyncio.Event()

    def exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        assert self.returncode is not None
        return self.returncode


class ZygoteBackend:
    """Forks replicas from a pre-warmed template process (see ``zygote.py``); falls back to
    plain processes if the zygote cannot run."""

    name = "zygote"
    keeps_replicas = False
    places_replicas = False

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._requests: socket.socket | None = None
        self._replies: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._ids = 0
        self._lock = asyncio.Lock()
        self._fallback = ProcessBackend()
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Start the zygote; without it, replicas start as plain processes (slower)."""
        try:
            await self.start_zygote()
        except (OSError, RuntimeError) as exc:
            log.warning("zygote unavailable (%s); replicas start as plain processes", exc)

    async def start_zygote(self) -> None:
        """Start the template and wait until it has imported everything."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "modelport.control.backends.zygote",
                stdin=theirs.fileno(),
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=replica_base_env(),
            )
        self._requests = ours
        assert self._proc.stdout is not None
        first = await self._proc.stdout.readline()
        if b"ready" not in first:
            raise RuntimeError("the zygote did not start")
        self._reader = asyncio.create_task(self._read(), name="zygote-reader")

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "exit" in message:
                child = self._children.pop(message["exit"], None)
                if child is not None:
                    child.exited(int(message["code"]))
            elif "pid" in message:
                # Registered here, before anything else is read: the replica's exit message
                # may be the very next line.
                child = ForkedProcess(int(message["pid"]))
                self._children[child.pid] = child
                future = self._replies.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(child)
        # The zygote died. Its replicas die with it (parent-death signal); make sure of it,
        # then report them gone. Starts still waiting for a reply will get none.
        for child in self._children.values():
            _signal_group(child.pid, signal.SIGKILL)
            child.exited(-signal.SIGKILL)
        self._children.clear()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(RuntimeError("the zygote exited"))
        self._replies.clear()
        self._proc = None

    async def start(self, spec: ReplicaSpec) -> Replica:
        if self._proc is None or self._proc.returncode is not None:
            return await self._fallback.start(spec)
        port = free_port()
        prepare_log(spec.log_file, port)
        header: dict[str, object] = {"log": str(spec.log_file), "name": spec.model_name}
        request = request_file(spec.launch_request(port))
        try:
            async with self._lock:
                self._ids += 1
                header["id"] = self._ids
                future: asyncio.Future[ForkedProcess] = asyncio.get_running_loop().create_future()
                self._replies[self._ids] = future
                assert self._requests is not None
                await asyncio.to_thread(
                    socket.send_fds, self._requests, [json.dumps(header).encode()], [request]
                )
        finally:
            os.close(request)
        child = await asyncio.wait_for(future, 30)
        return Replica(child, port, spec.log_file, spec.model_name, spec.key)

    async def close(self) -> None:
        if self._requests is not None:
            self._requests.close()  # the zygote reads end-of-file and leaves
            self._requests = None
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                _signal_group(self._proc.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.cancel()


MAX_LOG_BYTES = 16 << 20


def prepare_log(path: Path, port: int) -> None:
    """Create the log's folder, keep one previous log of a replica slot when it has grown
    past MAX_LOG_BYTES (a crash-looping model would otherwise fill the disk), and mark the
    start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            path.replace(path.with_suffix(".log.1"))
    except FileNotFoundError:
        pass
    with path.open("ab") as log:
        log.write(f"--- starting on port {port} at {time.ctime()}\n".encode())


def request_file(data: bytes) -> int:
    """A memory file holding ``data``, for a replica to read its launch request from."""
    fd = os.memfd_create("modelport-launch", os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def free_port() -> int:
    """A TCP port free on loopback right now (the server binds it moments later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a log file (reads at most its last 64 KiB)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-count:]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
