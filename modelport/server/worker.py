"""One worker process: load the models, then serve REST (uvicorn) and gRPC on one event loop.

Models load before the worker listens, so with SO_REUSEPORT the kernel never hands a
connection to a worker whose models are not loaded yet. With several workers the supervisor
loads them once instead (``preload_libraries`` and ``load_models``, then fork): the workers
start with the libraries and the model in copy-on-write pages they share.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from collections.abc import Sequence
from typing import Protocol

import uvicorn

from modelport.errors import ModelportError
from modelport.server.dataplane import DataPlane
from modelport.server.ports import listening_socket
from modelport.server.repository import LoadedModel, ModelRepository, ModelSource, load_models
from modelport.server.rest import RestApp
from modelport.settings import ServerSettings

log = logging.getLogger("modelport.server")


class Stoppable(Protocol):
    """What the worker needs of its gRPC server (``grpc.aio.Server``, imported only if used)."""

    async def stop(self, grace: float | None) -> None: ...


def preload_libraries(*, grpc: bool) -> None:
    """Import what a worker imports, so that workers forked afterwards share it."""
    import uvicorn.protocols.http.httptools_impl  # noqa: F401  (the protocol Config picks)

    try:
        import uvloop  # noqa: F401
    except ImportError:  # optional, as in run_worker
        pass
    if grpc:
        import modelport.server.grpc_service  # noqa: F401


def build_repository(sources: Sequence[ModelSource | LoadedModel]) -> ModelRepository:
    """Register and load every model; factories are kept so the model can be reloaded."""
    repo = ModelRepository()
    for item in load_models(sources):
        if isinstance(item, LoadedModel):
            repo.add(item.model, factory=item.factory)
        else:
            repo.add(item)
    return repo


def build_dataplane(settings: ServerSettings, repo: ModelRepository) -> DataPlane:
    """The data plane configured from settings."""
    return DataPlane(
        repo,
        max_inflight=settings.max_inflight,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
    )


def run_worker(
    settings: ServerSettings,
    sources: Sequence[ModelSource | LoadedModel],
    http_port: int,
    grpc_port: int | None,
    ready_fd: int | None = None,
    control: socket.socket | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT. ``ready_fd`` receives one byte once both ports listen;
    ``control`` carries repository changes to and from the other workers."""
    repo = build_repository(sources)
    for entry in repo.entries():
        if entry.model is not None:
            entry.model.start()
    dataplane = build_dataplane(settings, repo)
    # Everything allocated so far (libraries, the model) lives for the whole process: move it
    # out of the cyclic collector's reach, so a full collection scans only per-request
    # garbage instead of pausing every request for the whole heap (tens of ms with scipy).
    gc.collect()
    gc.freeze()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is an optional speed-up of uvicorn[standard]
        pass
    try:
        asyncio.run(_serve(settings, dataplane, http_port, grpc_port, ready_fd, control))
    finally:
        for entry in repo.entries():
            if entry.model is not None:
                entry.model.stop()


async def _serve(
    settings: ServerSettings,
    dataplane: DataPlane,
    http_port: int,
    grpc_port: int | None,
    ready_fd: int | None,
    control: socket.socket | None,
) -> None:
    key = settings.replica_key
    app = RestApp(
        dataplane,
        max_body_bytes=settings.max_body_bytes,
        replica_key=key.get_secret_value().encode() if key is not None else None,
    )
    config = uvicorn.Config(
        app,
        http="httptools",
        # No websocket routes here; "auto" would import a websockets library in every worker.
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    # While serve() runs, uvicorn catches SIGTERM/SIGINT itself and stops as _request_exit
    # would; these handlers cover the start-up before it (gRPC binding, say).
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_exit, server)

    if control is not None:
        _follow_other_workers(loop, dataplane, control)
    grpc_server: Stoppable | None = None
    if grpc_port is not None:
        from modelport.server.grpc_service import start_server

        grpc_server = await start_server(settings, dataplane, grpc_port)
    sock = listening_socket(settings.host, http_port)
    serve = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serve.done():
        await asyncio.sleep(0.005)
    if ready_fd is not None:
        try:
            os.write(ready_fd, b"1")
            os.close(ready_fd)
        except OSError:
            pass  # the supervisor stopped listening for readiness; nothing to tell
    await serve
    if grpc_server is not None:
        await grpc_server.stop(grace=2)


def _follow_other_workers(
    loop: asyncio.AbstractEventLoop, dataplane: DataPlane, control: socket.socket
) -> None:
    """Apply load/unload done through other workers, and announce ours to them."""
    control.setblocking(False)
    buffer = bytearray()

    def announce(verb: str, name: str) -> None:
        try:
            control.sendall(f"{verb} {name}\n".encode())
        except OSError:
            log.warning("could not tell the other workers to %s %s", verb, name)

    def on_readable() -> None:
        try:
            data = control.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(control.fileno())
            return
        buffer.extend(data)
        *lines, rest = bytes(buffer).split(b"\n")
        buffer[:] = rest
        for line in lines:
            verb, _, name = line.decode().partition(" ")
            apply = {"load": dataplane.load, "unload": dataplane.unload}.get(verb)
            if apply is None:
                continue
            try:
                apply(name, announce=False)
            except ModelportError as exc:
                log.error("following another worker's %s of %s failed: %s", verb, name, exc)

    dataplane.on_repository_change = announce
    loop.add_reader(control.fileno(), on_readable)


def _request_exit(server: uvicorn.Server) -> None:
    server.should_exit = True
