"""The ports a model server listens on: every worker binds the same ones (SO_REUSEPORT) and
the kernel spreads connections over them."""

from __future__ import annotations

import socket


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) a SO_REUSEPORT socket; workers then bind the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return sock


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A worker's own listening socket on the shared port."""
    sock = reserve_port(host, port)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
