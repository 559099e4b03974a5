"""An HTTPS listener for kubectl, when the platform itself serves plain HTTP.

client-go sends no credentials to a server whose URL is not https: clientcmd reads a
kubeconfig's user (token, exec plugin) "only if we are secure" (``DirectClientConfig.
ClientConfig``, ``restclient.IsConfigTransportTLS``). So a platform at ``http://HOST:PORT``
also serves its gateway over TLS on a second port, with a certificate from a CA of its own
kept in the data directory; ``modelport kubeconfig`` writes that URL and the CA
(``certificate-authority-data``), so kubectl verifies the server as it would a cluster's.

The CA lasts (kubeconfigs written once keep working); the server certificate is made again at
each start for the host clients use. The port is kept in the data directory too, so
kubeconfigs keep working across restarts, unless another process took it meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger("modelport.kube")

CA_DAYS = 3650
SERVER_DAYS = 397  # the longest lifetime browsers and Go accept for a server certificate


@dataclass(frozen=True)
class Endpoint:
    """Where kubectl reaches the API, and the CA that signed the server's certificate."""

    server: str
    ca_pem: bytes

    def cluster(self) -> dict[str, str]:
        """A kubeconfig ``cluster`` entry."""
        return {
            "server": self.server,
            "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
        }


class TLSListener:
    """Serves ``app`` over HTTPS on ``host`` while the platform runs."""

    def __init__(
        self,
        app: Any,
        config: Callable[[Any], Any],
        directory: Path,
        host: str,
        prefix: str,
    ) -> None:
        self.app = app
        self.config = config  # app -> uvicorn.Config, as the platform's own listener has
        self.directory = directory
        self.host = host
        self.prefix = prefix
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self._endpoint: Endpoint | None = None

    def endpoint(self) -> Endpoint | None:
        return self._endpoint

    async def start(self) -> None:
        """Listen; a host or port that cannot be had leaves kubectl without an endpoint, and
        the platform running."""
        try:
            await self._start()
        except OSError as exc:
            log.warning("no HTTPS endpoint for kubectl on %s: %s", self.host, exc)

    async def _start(self) -> None:
        import uvicorn

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_pem = await asyncio.to_thread(issue_certificates, self.directory, self.host)
        sock = self._listen()
        port = sock.getsockname()[1]
        (self.directory / "port").write_text(f"{port}\n")
        config = self.config(self.app)
        config.ssl_certfile = str(self.directory / "server.crt")
        config.ssl_keyfile = str(self.directory / "server.key")

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the platform's own listener handles signals

        self._server = Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="kube-tls")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._endpoint = Endpoint(f"https://{host}:{port}{self.prefix}", ca_pem)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        saved = self.directory / "port"
        wanted = (
            int(saved.read_text()) if saved.is_file() and saved.read_text().strip().isdigit() else 0
        )
        for port in dict.fromkeys((wanted, 0)):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                log.warning("port %s for kubectl is taken; picking another", port)
                continue
            sock.listen(512)
            return sock
        raise OSError(f"cannot listen on {self.host} for kubectl")


def issue_certificates(directory: Path, host: str) -> bytes:
    """Keep (or create) the CA, sign a server certificate for ``host``; the CA's PEM."""
    ca_key, ca = _load_ca(directory)
    if ca_key is None or ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("modelport kubernetes-style API CA", ca_key, ca_key, None, CA_DAYS)
        _write(directory / "ca.key", _key_pem(ca_key))
        _write(directory / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(host, key, ca_key, ca, SERVER_DAYS, sans=_names(host))
    _write(directory / "server.key", _key_pem(key))
    chain = server.public_bytes(serialization.Encoding.PEM)
    _write(directory / "server.crt", chain + ca.public_bytes(serialization.Encoding.PEM))
    return ca.public_bytes(serialization.Encoding.PEM)


def _load_ca(
    directory: Path,
) -> tuple[ec.EllipticCurvePrivateKey | None, x509.Certificate | None]:
    """The CA kept from an earlier start, unless missing, unreadable or expiring."""
    try:
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        ca = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    except (OSError, ValueError):
        return None, None
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=SERVER_DAYS)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or ca.not_valid_after_utc < soon:
        return None, None
    return key, ca


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    loopback = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names.append(x509.DNSName(host))
    else:
        loopback = [a for a in loopback if a != address] + [address]
    names.extend(x509.IPAddress(a) for a in loopback)
    return names


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    days: int,
    *,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject[:64])])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False
        )
        builder = builder.add_extension(x509.SubjectAlternativeName(sans or []), False)
    return builder.sign(signer, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
