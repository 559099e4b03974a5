"""CSRF protection for the UI's forms.

The session cookie is ``SameSite=Lax``, which keeps it off cross-site POSTs, but the model
hosts (``NAME.NAMESPACE.DOMAIN``) are the same *site* as the platform. So every
state-changing form carries a token bound to the visitor's credential (an HMAC of the
session cookie, OWASP's "signed double-submit" pattern), and the browser's own
``Origin``/``Sec-Fetch-Site`` headers must name this origin when they are sent."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from modelport.gateway.sessions import COOKIE

FIELD = "csrf"


class CsrfGuard:
    """Makes and checks the tokens; the key lives as long as the process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def token(self, request: Request) -> str:
        return hmac.new(self._key, _credential(request), hashlib.sha256).hexdigest()

    def refusal(self, request: Request, sent: object) -> str | None:
        """Why this state-changing request is refused; None when it may go ahead."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return "This form was sent from another site, so it was not carried out."
        origin = request.headers.get("origin")
        if origin is not None and origin != _own_origin(request):
            return "This form was sent from another origin, so it was not carried out."
        if not isinstance(sent, str) or not hmac.compare_digest(sent, self.token(request)):
            return (
                "This form has expired (the platform restarted or you signed in again). "
                "Reload the page and try again."
            )
        return None


def _credential(request: Request) -> bytes:
    session = request.cookies.get(COOKIE)
    if session:
        return b"session:" + session.encode()
    return b"authorization:" + request.headers.get("authorization", "").encode()


def _own_origin(request: Request) -> str:
    host = request.headers.get("host", "")
    forwarded = request.headers.get("x-forwarded-proto", "").lower()
    scheme = forwarded if forwarded in ("http", "https") else request.url.scheme
    return f"{scheme}://{host}"
