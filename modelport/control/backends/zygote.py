"""A pre-warmed template process that forks model servers (cold starts in ~0.1 s).

Starting ``python -m modelport serve`` costs over a second, most of it importing
scikit-learn, numpy and the server stack. The zygote imports them once; each replica is a
``fork()`` of it that runs the ``serve`` command with its own arguments, so a scale-from-zero
request waits for the model load only. (Android's app zygote works the same way.)

Requests come on stdin, a SOCK_SEQPACKET unix socket: each message is a JSON object
``{"id": N, "log": PATH, "name": NAME}`` with one file descriptor attached, a memory file
holding the launch request (see ``launch.py``). The zygote never reads it: only the replica
forked for it does, so no replica finds another's key or environment in the memory it
inherits from the zygote.
Replies and events go to stdout, one JSON object per line:
  reply    {"id": N, "pid": PID}          the replica started
  event    {"exit": PID, "code": C}       a replica ended (C < 0: killed by signal -C)
The zygote stays single-threaded, so forking it is safe.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import sys

from modelport.control.backends import confine, launch

# What a replica would import anyway; a module that is not installed is simply skipped.
PRELOAD = (
    "modelport.server.entry",
    "modelport.server.model_server",
    "modelport.server.worker",
    "modelport.server.rest",
    "modelport.server.dataplane",
    "modelport.runtimes",
    "modelport.runtimes.sklearn",
    "modelport.runtimes.custom",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.tree",
    "sklearn.pipeline",
    "joblib",
    "uvicorn",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "grpc",
    "prometheus_client",
)


def _preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 — optional libraries may be missing; replicas import what they need
            continue


def _write(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _write({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _child(request_fd: int, log: str, name: str) -> None:
    """In the forked replica: become its own process group, redirect output, then confine
    and serve (``launch.run``)."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    # The cmdline stays the zygote's; a name in comm lets `ps -o comm` and tests tell
    # replicas apart (the kernel keeps 15 bytes).
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(f"mp:{name}"[:15])
    except OSError:
        pass
    try:
        request = launch.read_request(request_fd)
    except (OSError, ValueError) as exc:
        print(f"error: unreadable launch request: {exc}", file=sys.stderr)
        os._exit(70)
    launch.run(request)


def main() -> None:
    # A SIGKILLed platform leaves no zygote behind; replicas set the same for themselves.
    confine.die_with_parent(signal.SIGTERM)
    _preload()
    # SIGCHLD only wakes the select() below (through the wakeup fd); reaping and writing
    # happen in the main loop, never inside a signal handler.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _write({"ready": True})
    requests = socket.socket(fileno=0)
    while True:
        readable, _, _ = select.select([0, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap()
        if 0 not in readable:
            continue
        message, fds, _flags, _addr = socket.recv_fds(requests, 8192, 1)
        if not message:
            break
        try:
            header = json.loads(message)
            request_id, log, name = int(header["id"]), str(header["log"]), str(header["name"])
        except (ValueError, KeyError, TypeError):
            header = None
        if header is None or not fds:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            requests.close()
            os.close(wake_r)
            os.close(wake_w)
            _child(fds[0], log, name)
        os.close(fds[0])
        _write({"id": request_id, "pid": pid})
    # The platform went away: take the replicas with us.
    for pid in _children():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _children() -> list[int]:
    try:
        path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
        with open(path) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


if __name__ == "__main__":
    main()
