"""OAuth 2.0 error responses (RFC 6749 §5.2), rendered the way Dex renders them."""

from __future__ import annotations

from starlette.responses import JSONResponse


class OAuthError(Exception):
    """An error the token endpoint reports as ``{"error", "error_description"}``."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str = "") -> None:
        super().__init__(description)
        self.description = description

    def response(self) -> JSONResponse:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return JSONResponse(body, status_code=self.status, headers=NO_STORE)


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 401


class TooManyFailures(OAuthError):
    error = "access_denied"
    status = 429


class SlowDown(OAuthError):
    error = "slow_down"


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
