"""Placement of a request in a namespace from its path and Host (addressing.py)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from modelport.gateway.addressing import Address, address, host_service
from modelport.gateway.paths import widest_reading


def _address(raw: str, host: str = "") -> Address | str:
    return address(raw.encode(), unquote(raw), host, "example.com")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/serving/ns/m/v2/models/m/infer", ("ns", "m", "/v2/models/m/infer")),
        ("/serving/ns/m", ("ns", "m", "/")),
        ("/serving/ns/m/v2/models/a%2Fb", ("ns", "m", "/v2/models/a/b")),
        ("/v2/models/m/infer", (None, None, "/v2/models/m/infer")),
        ("/servingx/ns/m", (None, None, "/servingx/ns/m")),
        ("/serving", (None, None, "/serving")),
    ],
)
def test_placed(raw: str, expected: tuple[str | None, str | None, str]) -> None:
    found = _address(raw)
    assert isinstance(found, Address)
    assert (found.namespace, found.name, found.path) == expected


def test_the_rest_is_forwarded_as_sent() -> None:
    found = _address("/serving/ns/m/v2/models/a%0d%0ab")
    assert isinstance(found, Address) and found.raw_path == b"/v2/models/a%0d%0ab"


@pytest.mark.parametrize(
    "raw",
    [
        "//serving/ns/m/x",
        "/./serving/ns/m/x",
        "/a/../serving/ns/m/x",
        "/%73erving/ns/m/x",
        "/%2573erving/ns/m/x",
        "/%2fserving/ns/m/x",
        "/serving%2fns/m/x",
        "/serving/n%73/m/x",
        "/serving/ns/%6d/x",
        "/serving/ns/m/../../other/m/x",
        "/serving/ns/m/%2e%2e/x",
        "/serving;x/ns/m/x",
        "/Serving/ns/m/x",
        "/x\\..\\serving/ns/m",
        "/serving/",
        "/serving//m/x",
    ],
)
def test_refused(raw: str) -> None:
    assert isinstance(_address(raw), str), raw


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("m.ns.example.com", ("ns", "m")),
        ("M.NS.Example.Com:8080", ("ns", "m")),
        ("m.ns.example.com.", ("ns", "m")),
        ("m.ns.svc.cluster.local", ("ns", "m")),
        ("m-predictor.ns.svc.cluster.local:80", ("ns", "m")),
        ("m-predictor-default.ns.svc.cluster.local", ("ns", "m")),
        ("m-predictor.ns.svc", ("ns", "m")),
        ("-predictor.ns.svc", ("ns", "-predictor")),
        ("a.m.ns.example.com", None),
        ("ns.example.com", None),
        (".ns.example.com", None),
        ("m.ns.example.com:http", None),
        ("[::1]:8000", None),
        ("127.0.0.1:8000", None),
        ("", None),
        ("m.ns.example.org", None),
    ],
)
def test_host_service(host: str, expected: tuple[str, str] | None) -> None:
    assert host_service(host, "example.com") == expected


def test_path_and_host_must_agree() -> None:
    assert isinstance(_address("/serving/a/m/x", "m.b.example.com"), str)
    same = _address("/serving/a/m/x", "other.a.svc.cluster.local")
    assert isinstance(same, Address) and same.namespace == "a"
    by_host = _address("/v2/models/m/infer", "m.b.svc")
    assert isinstance(by_host, Address) and (by_host.namespace, by_host.name) == ("b", "m")


@pytest.mark.parametrize(
    ("raw", "reading"),
    [
        (b"//serving/ns/", "/serving/ns/"),
        (b"/%2573erving", "/serving"),
        (b"/a\\..\\b;x/c", "/b/c"),
        (b"/../../x", "/x"),
        (b"/a/b/..", "/a/"),
        (b"/A%2FB", "/a/b"),
        (b"%zz/%4", "/%zz/%4"),
    ],
)
def test_widest_reading(raw: bytes, reading: str) -> None:
    assert widest_reading(raw) == reading
