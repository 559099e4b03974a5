"""Landlock's TCP connect rule (ABI ≥ 4): a process limited to some ports reaches those and
no others — what keeps a model on a Ray node away from the cluster's own services."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from modelport.control.backends import landlock

pytestmark = pytest.mark.skipif(landlock.abi_version() < 4, reason="needs Landlock ABI ≥ 4")

PROBE = """
import socket, sys
from pathlib import Path
from modelport.control.backends import landlock
allowed, other = int(sys.argv[1]), int(sys.argv[2])
limit = sys.argv[3] == "limit"
landlock.restrict(landlock.Rules(read=(Path(sys.prefix),), connect_ports=(allowed,) if limit else None))
for port in (allowed, other):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        print(port, "ok")
    except OSError as exc:
        print(port, "denied", exc.errno)
    finally:
        s.close()
"""


@pytest.fixture
def listeners():
    socks = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        socks.append(s)
    yield [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()


def _probe(ports: list[int], mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ports[0]), str(ports[1]), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split("\n")[:2]


def test_connect_is_limited_to_the_listed_ports(listeners: list[int]):
    allowed, other = listeners
    assert _probe(listeners, "limit") == [f"{allowed} ok", f"{other} denied 13"]


def test_without_a_connect_list_outbound_tcp_is_left_alone(listeners: list[int]):
    allowed, other = listeners
    assert _probe(listeners, "open") == [f"{allowed} ok", f"{other} ok"]
