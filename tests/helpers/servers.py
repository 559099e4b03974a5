"""``modelport identity serve`` and ``modelport gateway`` processes on free loopback ports.

Each is started, its banner read until it says it serves, and stopped when the test is done
with it: ``CliServers`` (the ``cli_servers`` fixture) keeps that bookkeeping in one place.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
# A port nothing listens on: for gateways whose upstream a test never reaches.
NO_UPSTREAM = "http://127.0.0.1:9"


def read_banner(
    proc: subprocess.Popen[str],
    patterns: dict[str, str],
    ready: Callable[[str], bool],
    timeout: float,
) -> tuple[dict[str, str], list[str]]:
    """What ``proc`` printed by the line ``ready`` accepts (or its end): the first group of
    each of ``patterns`` that matched, and every line. A thread keeps reading afterwards, so
    the list grows and the process never blocks on a full pipe.

    RuntimeError (after killing it) when not ready in time or a pattern did not match.
    """
    lines: list[str] = []
    found: dict[str, str] = {}
    done = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            for name, pattern in patterns.items():
                m = re.search(pattern, line)
                if m and name not in found:
                    found[name] = m.group(1)
            if ready(line):
                done.set()
        done.set()

    threading.Thread(target=pump, daemon=True).start()
    if not done.wait(timeout) or set(found) != set(patterns):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{proc.args!r} did not start:\n" + "".join(lines))
    return found, lines


def start_and_read(
    argv: list[str],
    patterns: dict[str, str],
    ready: str,
    timeout: float = 60.0,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[str], dict[str, str], list[str]]:
    """Start a CLI server and read its banner until a line contains ``ready``.

    ``patterns`` maps names to regexes with one group (e.g. the URL it printed); all must
    have matched by then, else the process is killed and its output raised.
    """
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd or ROOT, env=env
    )
    found, lines = read_banner(proc, patterns, lambda line: ready in line, timeout)
    return proc, found, lines


@dataclass
class CliServer:
    """A running provider or gateway: its process, URL, output so far and data directory."""

    proc: subprocess.Popen[str]
    url: str
    output: list[str]
    data_dir: Path

    @property
    def issuer(self) -> str:
        """The identity provider's issuer (it serves below ``/dex``)."""
        return f"{self.url}/dex"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """``modelport ARGS --data-dir DATA`` on this server's database; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "modelport", *args, "--data-dir", str(self.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def stop(self) -> None:
        """Terminate the process (killed if it does not end in 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _argv(
    command: list[str], data_dir: Path, config: Path | None, extra: tuple[str, ...]
) -> list[str]:
    argv = [sys.executable, "-m", "modelport", *command, "--data-dir", str(data_dir)]
    argv += ["--port", "0", *extra]
    return argv + (["--config", str(config)] if config is not None else [])


def start_identity(data_dir: Path, config: Path | None, *extra: str) -> CliServer:
    """``modelport identity serve`` with this data directory and Dex config."""
    argv = _argv(["identity", "serve"], data_dir, config, extra)
    proc, found, lines = start_and_read(
        argv, {"issuer": r"identity provider: issuer (http://\S+)/dex\b"}, ready="discovery"
    )
    return CliServer(proc, found["issuer"], lines, data_dir)


def start_gateway(data_dir: Path, upstream: str, config: Path | None, *extra: str) -> CliServer:
    """``modelport gateway`` in front of ``upstream``, with its own provider at ``/dex``."""
    argv = _argv(["gateway", "--upstream", upstream], data_dir, config, extra)
    proc, found, lines = start_and_read(
        argv, {"url": r"^modelport gateway: (http://\S+)"}, ready="discovery"
    )
    return CliServer(proc, found["url"], lines, data_dir)


class CliServers:
    """Starts providers and gateways, each in a new directory with its Dex config written
    there; ``stop_all`` ends every one still running."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: list[CliServer] = []

    def _workdir(self, name: str, config: str | None) -> tuple[Path, Path | None]:
        work = self._tmp.mktemp(name)
        if config is None:
            return work / "data", None
        (work / "dex.yaml").write_text(config)
        return work / "data", work / "dex.yaml"

    def identity(self, config: str | None, *extra: str) -> CliServer:
        """A provider with ``config`` (Dex YAML text; None for none)."""
        data_dir, config_path = self._workdir("idp", config)
        server = start_identity(data_dir, config_path, *extra)
        self._started.append(server)
        return server

    def gateway(self, config: str | None, *extra: str, upstream: str = NO_UPSTREAM) -> CliServer:
        """A gateway (with its provider) with ``config``, in front of ``upstream``."""
        data_dir, config_path = self._workdir("gw", config)
        server = start_gateway(data_dir, upstream, config_path, *extra)
        self._started.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every server started here."""
        for server in self._started:
            server.stop()
