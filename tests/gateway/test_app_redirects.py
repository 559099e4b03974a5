"""After login the browser goes back only to a path on this site (issue 9, finding 4)."""

from __future__ import annotations

import pytest

from modelport.gateway.redirects import return_path
from tests.helpers.kubeflow import DEX_CONFIG
from tests.helpers.login import follow_login, raw_client
from tests.helpers.servers import CliServer, CliServers


@pytest.fixture(scope="module")
def gw(cli_servers: CliServers) -> CliServer:
    return cli_servers.gateway(DEX_CONFIG)  # never forwards: no upstream


def _login_returns_to(gw: CliServer, raw_target: str) -> str:
    """Where the callback sends a browser that first asked for ``raw_target`` (as sent)."""
    with raw_client(gw) as c:
        request = c.build_request("GET", gw.url + "/")
        request.url = request.url.copy_with(raw_path=raw_target.encode())
        first = c.send(request)
        assert first.status_code == 302, (raw_target, first.status_code)
        final = follow_login(c, first.headers["location"])
        assert final.status_code == 302
        return final.headers["location"]


@pytest.mark.parametrize(
    "raw_target",
    [
        "/%09/evil.example/x",  # the finding: Location "/\t/evil.example/x" became //evil.example
        "/%0a/evil.example/x",
        "/%0d%0a/evil.example",
        "/%5cevil.example/x",
        "/%5c%5cevil.example/x",
        "/%2f/evil.example/x",
        "/%2F%2Fevil.example",
        "/%00/evil.example",
        "/%7f/evil.example",
        "//evil.example/x",
        "/\\evil.example/x",
        "/a?next=%0d%0aSet-Cookie:x=y",
    ],
)
def test_login_never_returns_to_another_host(gw: CliServer, raw_target: str) -> None:
    assert _login_returns_to(gw, raw_target) == "/"


def test_login_returns_to_the_target_as_sent(gw: CliServer) -> None:
    target = "/v2/models/a%20b/infer?x=1&next=https://elsewhere.example/&y=%2F"
    assert _login_returns_to(gw, target) == target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", "/"),
        ("/v2/models/m?x=1", "/v2/models/m?x=1"),
        ("/a%2Fb", "/a%2Fb"),
        ("/a?u=http://x.example//y", "/a?u=http://x.example//y"),
        ("", "/"),
        ("evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("/ /evil.example", "/"),
        ("/a b", "/"),
        ("/é", "/"),
        ("/%E2%80%A8x", "/%E2%80%A8x"),  # encoded non-ASCII stays encoded: a path, not a host
        ("/%C2%85/evil.example", "/%C2%85/evil.example"),
        ("/a//b", "/"),
        ("/a%2f%2fb", "/"),
        ("/a?q=%5c", "/"),
        ("/a?q=%09", "/"),
    ],
)
def test_return_path(target: str, expected: str) -> None:
    assert return_path(target) == expected
