"""A throwaway PostgreSQL server for tests: initdb into a temporary directory, then
``postgres`` on a free loopback port with trust authentication.

PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` system user
(``runuser``). ``scripts/test.sh`` installs Debian's postgresql package when it is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field


@dataclass
class PgServer:
    url: str
    proc: subprocess.Popen[bytes] = field(repr=False)
    data_dir: str = ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def find_bin(name: str) -> str | None:
    """A PostgreSQL server program from PATH or Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def start_pg_server() -> PgServer:
    initdb, postgres = find_bin("initdb"), find_bin("postgres")
    if initdb is None or postgres is None:
        raise RuntimeError("PostgreSQL server programs not found (apt-get install postgresql)")
    base = tempfile.mkdtemp(prefix="modelport-pg-")
    data = os.path.join(base, "data")
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    subprocess.run(
        [*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*as_user, postgres, "-D", data, "-h", "127.0.0.1", "-p", str(port), "-k", base],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", proc, base)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.3)  # accepting connections precedes accepting logins by a moment
            return server
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("PostgreSQL did not start")
