"""Process supervision: fork N workers that share the ports, respawn the ones that die.

The supervisor never serves a request. It reserves the ports (so port 0 resolves to one free
port shared by every worker), forks workers that each bind the same ports with SO_REUSEPORT
(the kernel spreads connections over them), and restarts a worker that exits unexpectedly,
with a growing delay if it keeps crashing. Only the standard library is imported here.

Given a ``prepare`` step (``ModelServer.run`` passes the import of the worker stack and the
model loads), the first workers are not forked from the supervisor but from a short-lived
template child: it prepares once, forks every worker, and exits. The workers then share the
prepared pages copy-on-write among themselves, and the supervisor stays small: preparing in
the supervisor itself would share the same pages with it too, but summed RSS counts a shared
page once per process, so the tree would read 376 MiB instead of 264 (2 workers, iris).
The supervisor is made the workers' subreaper (``PR_SET_CHILD_SUBREAPER``), so it reaps them
as its own children once the template exits. A worker respawned later forks from the
supervisor and prepares itself.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("modelport.server")

# (worker index, fd to write b"1" to once ready, control socket shared with the supervisor)
WorkerTarget = Callable[[int, int, socket.socket], None]


@dataclass
class _Worker:
    index: int
    pid: int
    started: float
    control: socket.socket
    crashes: int = 0
    pending: bytes = b""


class Supervisor:
    """Runs ``target`` in ``count`` forked processes until SIGINT/SIGTERM."""

    def __init__(
        self,
        target: WorkerTarget,
        count: int,
        *,
        on_ready: Callable[[], None] | None = None,
        on_worker_exit: Callable[[int], None] | None = None,
        prepare: Callable[[], None] | None = None,
        ready_timeout_s: float = 300.0,
        grace_s: float = 10.0,
    ) -> None:
        self.target = target
        self.count = count
        self.on_ready = on_ready
        self.on_worker_exit = on_worker_exit
        self.prepare = prepare
        self.ready_timeout_s = ready_timeout_s
        self.grace_s = grace_s
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._ready_pipes: dict[int, int] = {}
        # Control lines ("VERB KEY\n") a worker sent, relayed to every other worker; the last
        # line per KEY is replayed to a respawned worker so it ends up in the same state.
        self._history: dict[bytes, bytes] = {}
        #: why start-up failed, as the failing worker reported it
        self.failure: str | None = None

    def run(self) -> int:
        """Start the workers and supervise them; returns the exit status."""
        previous = {
            s: signal.signal(s, self._request_stop) for s in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            if self.prepare is not None and _become_subreaper():
                self._spawn_from_template(self.prepare)
            else:
                for i in range(self.count):
                    self._spawn(i, crashes=0)
            if self.failure is not None or not self._wait_first_ready():
                self._stop_all()
                return 1
            if self.on_ready is not None:
                self.on_ready()
            while not self._stopping:
                self._relay(timeout=0.1)
                self._reap()
            self._stop_all()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _request_stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _spawn(self, index: int, crashes: int) -> None:
        read_fd, write_fd = os.pipe()
        ours, theirs = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            ours.close()
            for other in self._workers.values():
                other.control.close()
            self._run_worker(index, write_fd, theirs)
        self._adopt(index, pid, read_fd, write_fd, ours, theirs, crashes)

    def _adopt(
        self,
        index: int,
        pid: int,
        read_fd: int,
        write_fd: int,
        ours: socket.socket,
        theirs: socket.socket,
        crashes: int = 0,
    ) -> None:
        os.close(write_fd)
        theirs.close()
        self._ready_pipes[pid] = read_fd
        self._workers[pid] = _Worker(index, pid, time.monotonic(), ours, crashes)
        if self._history:
            ours.sendall(b"".join(self._history.values()))

    def _run_worker(self, index: int, write_fd: int, theirs: socket.socket) -> None:
        """In a forked child: run the target and exit, never returning."""
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = 0
        try:
            self.target(index, write_fd, theirs)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            _report_failure(write_fd, exc)
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _spawn_from_template(self, prepare: Callable[[], None]) -> None:
        """Fork a template that runs ``prepare`` then forks every worker (module docstring)."""
        pipes = [os.pipe() for _ in range(self.count)]
        pairs = [socket.socketpair() for _ in range(self.count)]
        report_read, report_write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        template = os.fork()
        if template == 0:
            os.close(report_read)
            for (read_fd, _), (ours, _) in zip(pipes, pairs, strict=True):
                os.close(read_fd)
                ours.close()
            self._run_template(prepare, pipes, pairs, report_write)
        os.close(report_write)
        lines = self._read_template_report(template, report_read).splitlines()
        os.waitpid(template, 0)
        # Each worker reports "INDEX PID" itself, so none goes unknown if the template dies.
        pids: dict[int, int] = {}
        for line in lines:
            slot, _, pid = line.partition(b" ")
            if slot.isdigit() and pid.isdigit():
                pids[int(slot)] = int(pid)
        for index, ((read_fd, write_fd), (ours, theirs)) in enumerate(
            zip(pipes, pairs, strict=True)
        ):
            if index in pids:
                self._adopt(index, pids[index], read_fd, write_fd, ours, theirs)
            else:
                for fd in (read_fd, write_fd):
                    os.close(fd)
                ours.close()
                theirs.close()
        if len(pids) < self.count and not self._stopping and self.failure is None:
            failed = [line[1:] for line in lines if line.startswith(b"E")]
            self.failure = (
                failed[0].decode(errors="replace") if failed else "the workers' template failed"
            )

    def _read_template_report(self, template: int, fd: int) -> bytes:
        """What the template and the workers wrote, read until all of them closed the pipe.
        The template is killed when a stop is requested or it runs past the ready timeout."""
        deadline = time.monotonic() + self.ready_timeout_s
        report = b""
        killed = False
        try:
            while True:
                if not killed and (self._stopping or time.monotonic() > deadline):
                    if not self._stopping:
                        self.failure = (
                            f"the workers were not prepared within {self.ready_timeout_s:.0f} s"
                        )
                    os.kill(template, signal.SIGKILL)
                    killed = True
                readable, _, _ = select.select([fd], [], [], 0.2)
                if readable:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        return report
                    report += chunk
        finally:
            os.close(fd)

    def _run_template(
        self,
        prepare: Callable[[], None],
        pipes: list[tuple[int, int]],
        pairs: list[tuple[socket.socket, socket.socket]],
        report: int,
    ) -> None:
        """In the template child: prepare, fork the workers (each reports its pid), exit."""
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = 0
        try:
            prepare()
            for index, ((_, write_fd), (_, theirs)) in enumerate(zip(pipes, pairs, strict=True)):
                sys.stdout.flush()
                sys.stderr.flush()
                if os.fork() == 0:
                    os.write(report, b"%d %d\n" % (index, os.getpid()))
                    os.close(report)
                    for other, ((_, fd), (_, sock)) in enumerate(zip(pipes, pairs, strict=True)):
                        if other != index:
                            os.close(fd)
                            sock.close()
                    self._run_worker(index, write_fd, theirs)
        except BaseException as exc:
            _report_failure(report, exc, prefix=b"\nE")
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _relay(self, timeout: float) -> None:
        by_fd = {w.control.fileno(): w for w in self._workers.values()}
        if not by_fd:
            time.sleep(timeout)
            return
        try:
            readable, _, _ = select.select(list(by_fd), [], [], timeout)
        except InterruptedError:
            return
        for fd in readable:
            source = by_fd[fd]
            try:
                data = source.control.recv(65536)
            except OSError:
                data = b""
            if not data:
                continue  # the worker is exiting; _reap handles it
            source.pending += data
            *lines, source.pending = source.pending.split(b"\n")
            for line in lines:
                if not line:
                    continue
                self._history[line.rsplit(b" ", 1)[-1]] = line + b"\n"
                for worker in self._workers.values():
                    if worker is not source:
                        try:
                            worker.control.sendall(line + b"\n")
                        except OSError:
                            pass  # that worker is gone; its replacement gets the history

    def _wait_first_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout_s
        pending = dict(self._ready_pipes)
        while pending and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.error("workers did not become ready within %.0f s", self.ready_timeout_s)
                return False
            readable, _, _ = select.select(list(pending.values()), [], [], min(remaining, 0.2))
            for fd in readable:
                pid = next(p for p, f in pending.items() if f == fd)
                data = os.read(fd, 65536)
                if data.startswith(b"1"):
                    del pending[pid]
                    continue
                self.failure = (
                    data[1:].decode(errors="replace")
                    if data.startswith(b"E")
                    else "a worker exited before it became ready"
                )
                return False
        for pid in list(self._ready_pipes):
            self._close_pipe(pid)
        return not self._stopping

    def _close_pipe(self, pid: int) -> None:
        fd = self._ready_pipes.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._workers.pop(pid, None)
            self._close_pipe(pid)
            if worker is None:
                continue
            worker.control.close()
            if self.on_worker_exit is not None:
                self.on_worker_exit(pid)
            if self._stopping:
                continue
            lived = time.monotonic() - worker.started
            crashes = 0 if lived > 30 else worker.crashes + 1
            delay = min(0.1 * (2**crashes), 10.0) if crashes else 0.0
            log.warning(
                "worker %d (pid %d) exited with status %d; restarting%s",
                worker.index,
                pid,
                os.waitstatus_to_exitcode(status),
                f" in {delay:.1f} s" if delay else "",
            )
            if delay:
                time.sleep(delay)
            if not self._stopping:
                self._spawn(worker.index, crashes)
                # a respawned worker signals readiness too; we do not wait for it here
                self._close_pipe(next(reversed(self._workers)))

    def _stop_all(self) -> None:
        for pid in list(self._workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.grace_s
        while self._workers and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                gone = self._workers.pop(pid, None)
                if gone is not None:
                    gone.control.close()
                if self.on_worker_exit is not None:
                    self.on_worker_exit(pid)
            else:
                time.sleep(0.05)
        for pid in list(self._workers):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for worker in self._workers.values():
            worker.control.close()
        self._workers.clear()


def _become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux prctl PR_SET_CHILD_SUBREAPER); False if impossible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


_PR_SET_CHILD_SUBREAPER = 36


def _report_failure(fd: int, exc: BaseException, prefix: bytes = b"E") -> None:
    """Tell the supervisor why this worker could not start (it prints the reason once)."""
    from modelport.errors import ModelportError

    if isinstance(exc, ModelportError | OSError):
        message = str(exc)
    else:
        log.exception("worker failed")
        message = f"{type(exc).__name__}: {exc}"
    try:
        os.write(fd, prefix + message.encode())
    except OSError:
        pass
