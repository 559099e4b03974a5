"""The certificates of kubectl's HTTPS listener: a lasting CA and a server certificate for the
platform's host that Python's TLS (as the kubernetes client uses it) verifies."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from modelport.kube.tls import issue_certificates


def test_ca_lasts_and_server_certificate_names_the_host(tmp_path: Path):
    ca_pem = issue_certificates(tmp_path, "10.1.2.3")
    assert issue_certificates(tmp_path, "10.1.2.3") == ca_pem  # kept across starts
    server = x509.load_pem_x509_certificates((tmp_path / "server.crt").read_bytes())[0]
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    assert {"10.1.2.3", "127.0.0.1", "::1"} <= addresses
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    for name in ("ca.key", "server.key"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0
    # A client trusting only the CA accepts the server's chain.
    client = ssl.create_default_context(cadata=ca_pem.decode())
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    assert client.verify_mode == ssl.CERT_REQUIRED


def test_a_damaged_ca_is_made_again(tmp_path: Path):
    first = issue_certificates(tmp_path, "localhost")
    (tmp_path / "ca.key").write_text("garbage")
    assert issue_certificates(tmp_path, "localhost") != first
