"""Reading ASGI requests and writing replies: the small pieces every part of the gateway
shares (headers as a dict, cookies, JSON replies, what the client asks for)."""

from __future__ import annotations

from modelport.gateway.proxy import Scope, Send

_HEADERS_KEY = "modelport.headers"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request headers as a dict (lower-case names), built once per request."""
    cached = scope.get(_HEADERS_KEY)
    if isinstance(cached, dict):
        return cached
    out: dict[str, str] = {}
    for k, v in scope["headers"]:
        key = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        out[key] = f"{out[key]}; {value}" if key == "cookie" and key in out else value
    scope[_HEADERS_KEY] = out
    return out


def cookies(headers: dict[str, str]) -> dict[str, str]:
    """The Cookie header's pairs, read one by one (RFC 6265 §5.4 sends ``name=value; …``):
    http.cookies drops the whole header for one malformed pair, and a cookie that model
    code set on this origin could then sign a visitor out. The first of a name wins."""
    found: dict[str, str] = {}
    for pair in headers.get("cookie", "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip()
    return found


def cookie_header(name: str, value: str, max_age: float, secure: bool) -> bytes:
    """A Set-Cookie value for one of the gateway's own cookies."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={int(max_age)}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode()


def wants_json(accept: str) -> bool:
    """An API client: asks for JSON and not for HTML (oauth2-proxy's rule)."""
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "application/json" in types and "text/html" not in types


def wants_page(scope: Scope) -> bool:
    """A browser asking for a page: GET or HEAD with HTML acceptable."""
    accept = request_headers(scope).get("accept", "")
    return scope["method"] in ("GET", "HEAD") and ("text/html" in accept or accept in ("", "*/*"))


def secure_request(scope: Scope, always: bool) -> bool:
    """Whether the client reached us over https (directly or via a proxy): cookies then get
    the Secure attribute."""
    if always or scope.get("scheme") == "https":
        return True
    return request_headers(scope).get("x-forwarded-proto", "").lower() == "https"


async def reply(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    """A whole response in two ASGI messages."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
