"""The page a signed-in browser gets at ``/``, and the UI's script and stylesheet.

The gateway hands "/" over without the visitor's credentials (it strips them before
anything that is not a mounted app), so this page is the same for everyone: its script
loads the service list from ``/ui/`` (app.py) with the visitor's own cookie into itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from modelport.ui.render import CSP

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# The gateway serves the page itself at "/" and mounts this app at STATIC_PREFIX for the
# page's files (the prefix removed from the path, as for every mount).
STATIC_PREFIX = "/_ui"
_FILES = {
    "/": ("home.html", b"text/html; charset=utf-8"),
    "/home.js": ("home.js", b"text/javascript; charset=utf-8"),
    "/home.css": ("home.css", b"text/css; charset=utf-8"),
}
# The same policy as the UI's pages: only this origin's files, no inline code, no framing.
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-cache"),
]


class HomePage:
    """ASGI app for ``/`` and the page's own files under ``/_ui``."""

    def __init__(self) -> None:
        static = resources.files("modelport.ui") / "static"
        self._bodies = {path: (static / name).read_bytes() for path, (name, _) in _FILES.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] or "/"
        found = _FILES.get(path)
        if found is None or scope["method"] not in ("GET", "HEAD"):
            status, body, kind = 404, b'{"error": "Not Found"}', b"application/json"
        else:
            status, body, kind = 200, self._bodies[path], found[1]
        headers = [(b"content-type", kind), (b"content-length", b"%d" % len(body)), *_HEADERS]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        head = scope["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})
