"""A pre-warmed template process that forks model servers (cold starts in ~0.1 s).

Starting ``python -m modelport serve`` costs over a second, most of it importing
scikit-learn, numpy and the server stack. The zygote imports them once; each replica is a
``fork()`` of it that runs the ``serve`` command with its own arguments, so a scale-from-zero
request waits for the model load only. (Android's app zygote works the same way.)

Protocol on stdin/stdout, one JSON object per line:
  request  {"id": N, "argv": [...serve arguments...], "env": {...}, "log": "/path"}
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
import sys

# What a replica would import anyway; a module that is not installed is simply skipped.
PRELOAD = (
    "modelport.cli.main",
    "modelport.cli.serve",
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


def _child(request: dict[str, object]) -> None:
    """In the forked replica: become its own process group, redirect output, run serve."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    _die_with_parent()
    fd = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
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
            comm.write(f"mp:{request.get('name', 'replica')}"[:15])
    except OSError:
        pass
    # The replica's whole environment comes with the request (the zygote's own is minimal).
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request.get("env") or {}).items()})
    argv = [str(a) for a in list(request["argv"])]  # type: ignore[call-overload]
    sys.argv = ["modelport", *argv]
    from modelport.cli.main import app

    code = 1
    try:
        result = app(args=argv, prog_name="modelport", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 — report anything, then leave without cleanup
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    """SIGTERM this process when its parent dies (Linux prctl PR_SET_PDEATHSIG), so a
    SIGKILLed platform or zygote leaves no model server behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    _die_with_parent()
    _preload()
    # SIGCHLD only wakes the select() below (through the wakeup fd); reaping and writing
    # happen in the main loop, never inside a signal handler.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _write({"ready": True})
    pending = b""
    while True:
        readable, _, _ = select.select([0, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap()
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            pid = os.fork()
            if pid == 0:
                os.close(wake_r)
                os.close(wake_w)
                _child(request)
            _write({"id": request.get("id"), "pid": pid})
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
