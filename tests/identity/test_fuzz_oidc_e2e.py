"""Hypothesis fuzzing of the OIDC endpoints' parameters against a real provider process.

Whatever the parameters, ``/dex/auth``, ``/dex/auth/local``, ``/dex/token``,
``/dex/device/code`` and the device callback answer with a client or auth error, never a
5xx, and the server survives (issue 9: "hypothesis fuzzing ... of the OIDC endpoints'
parameters").
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from tests.helpers.kubeflow import AUTHSERVICE_ID, AUTHSERVICE_SECRET
from tests.helpers.provider import auth_params, provider_client
from tests.helpers.servers import CliServer

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a client can send: anything but lone surrogates (which no encoder can send).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
LONG = st.builds(lambda c, n: c * n, st.sampled_from("xé/%+&=\x00"), st.integers(0, 20_000))
KNOWN = st.sampled_from(
    [
        "",
        AUTHSERVICE_ID,
        "modelport-cli",
        "/login/oidc",
        "/dex/device/callback",
        "http://127.0.0.1:8765/callback",
        "urn:ietf:wg:oauth:2.0:oob",
        "openid",
        "openid email offline_access groups profile",
        "audience:server:client_id:approving-app",
        "code",
        "code id_token",
        "S256",
        "plain",
        "a" * 43,
        "force",
        "authorization_code",
        "refresh_token",
        "password",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "BCDF-GHJK",
    ]
)
VALUE = st.one_of(KNOWN, TEXT, LONG)
NAMES = st.sampled_from(
    [
        "client_id",
        "client_secret",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "approval_prompt",
        "grant_type",
        "code",
        "code_verifier",
        "refresh_token",
        "username",
        "password",
        "device_code",
        "user_code",
        "login",
        "req",
    ]
)
PARAMS = st.dictionaries(st.one_of(NAMES, TEXT), VALUE, max_size=8)
# Header values travel as latin-1 bytes, with no whitespace around them (h11 refuses it).
HEADER = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=200)
AUTHORIZATION = st.one_of(
    st.just(""),
    HEADER,
    st.builds(lambda v: f"Basic {v}", HEADER),
    st.builds(lambda v: f"basic {base64.b64encode(v).decode()}", st.binary(max_size=100)),
    st.just(
        "Basic " + base64.b64encode(f"{AUTHSERVICE_ID}:{AUTHSERVICE_SECRET}".encode()).decode()
    ),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/json",
        "text/plain",
    ]
)


def ok(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])


class Client:
    """``http`` whose requests httpx itself refuses to send (URL over 64 KiB) are skipped."""

    def __init__(self, http: Client) -> None:
        self._http = http

    def get(self, *args: object, **kwargs: object) -> httpx.Response:
        return self._send(self._http.get, *args, **kwargs)

    def post(self, *args: object, **kwargs: object) -> httpx.Response:
        return self._send(self._http.post, *args, **kwargs)

    @staticmethod
    def _send(method, *args: object, **kwargs: object) -> httpx.Response:  # noqa: ANN001
        try:
            return method(*args, **kwargs)
        except httpx.InvalidURL:
            reject()


@pytest.fixture(scope="module")
def http(idp: CliServer):
    with provider_client(idp) as c:
        yield Client(c)


@FUZZ
@given(params=PARAMS, base=st.booleans())
def test_auth(http: Client, params: dict[str, str], base: bool):
    ok(http.get("/dex/auth", params={**auth_params(), **params} if base else params))


@FUZZ
@given(query=TEXT, raw=st.binary(max_size=200))
def test_auth_raw_query(http: Client, query: str, raw: bytes):
    # Invalid percent-escapes and bytes that are not UTF-8 in the query string.
    escaped = "".join(f"%{b:02X}" for b in raw)
    rest = quote(query, safe="=&%+;")  # stray "%" and separators stay as they are
    ok(http.get(httpx.URL("/dex/auth", query=f"client_id={escaped}&{rest}".encode())))


@FUZZ
@given(
    params=PARAMS, form=PARAMS, path=st.sampled_from(["/dex/auth/local", "/dex/auth/local/login"])
)
def test_login(http: Client, params: dict[str, str], form: dict[str, str], path: str):
    # Against a real pending request unless the fuzzed parameters name one, so the form
    # and the password check run too.
    if "req" not in params and "state" not in params:
        location = http.get("/dex/auth", params=auth_params()).headers["location"]
        params["req"] = location.split("req=", 1)[1]
    ok(http.get(path, params=params))
    ok(http.post(path, params=params, data=form))


@FUZZ
@given(form=PARAMS, authorization=AUTHORIZATION)
def test_token(http: Client, form: dict[str, str], authorization: str):
    value = authorization.strip().encode("latin-1")
    headers = {"Authorization": value} if value else {}
    ok(http.post("/dex/token", data=form, headers=headers))
    ok(http.post("/dex/token/revoke", data=form, headers=headers))


@FUZZ
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES)
def test_token_bodies(http: Client, body: bytes, content_type: str):
    for path in ("/dex/token", "/dex/device/code", "/dex/device/auth/verify_code"):
        ok(http.post(path, content=body, headers={"Content-Type": content_type}))


@FUZZ
@given(form=PARAMS, query=PARAMS, bearer=HEADER)
def test_device_and_others(http: Client, form: dict[str, str], query: dict[str, str], bearer: str):
    ok(http.post("/dex/device/code", data=form))
    ok(http.post("/dex/device/auth/verify_code", data=form))
    ok(http.get("/dex/device", params=query))
    ok(http.get("/dex/device/callback", params=query))
    ok(http.get("/dex/approval", params=query))
    header = f"Bearer {bearer}".strip().encode("latin-1")
    ok(http.get("/dex/userinfo", headers={"Authorization": header}))


def test_the_provider_survived(idp: CliServer, http: Client):
    assert idp.proc.poll() is None
    assert http.get("/dex/healthz").status_code == 200
    assert http.get("/dex/auth", params=auth_params()).status_code == 302
