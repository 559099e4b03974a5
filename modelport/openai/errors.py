"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP
status in ``code``, as KServe writes them (python/kserve/kserve/protocol/rest/openai/errors.py,
``create_error_response``: type defaults to "BadRequestError", code is the status as a string).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

__all__ = ["Error", "ErrorResponse", "OpenAIError", "create_error_response", "error_body"]

# The error type each status is reported with (the names of the openai client's exceptions).
_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    413: "RequestTooLargeError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
}


class Error(BaseModel):
    """The ``error`` member of an error response."""

    message: str
    type: str
    param: str | None = None
    code: str


class ErrorResponse(BaseModel):
    """An error body in OpenAI's shape."""

    error: Error

    @property
    def status(self) -> int:
        """The HTTP status the error is answered with (its ``code``, else 500)."""
        code = self.error.code
        return int(code) if code.isdigit() and 400 <= int(code) <= 599 else 500


def create_error_response(
    message: str,
    err_type: str | None = None,
    param: str = "",
    status_code: HTTPStatus | int = HTTPStatus.BAD_REQUEST,
) -> ErrorResponse:
    """KServe's helper, with the same arguments; ``err_type`` defaults to the status' name."""
    status = int(status_code)
    kind = err_type or _TYPES.get(status, "InternalServerError" if status >= 500 else "Error")
    return ErrorResponse(error=Error(message=message, type=kind, param=param, code=str(status)))


def error_body(status: int, message: str, param: str = "", err_type: str | None = None) -> bytes:
    """The JSON bytes of an OpenAI-shaped error."""
    response = create_error_response(message, err_type, param, status)
    return response.model_dump_json().encode()


class OpenAIError(Exception):
    """Raised by model code to answer with an OpenAI-shaped error (KServe's OpenAIError).

    Given a plain message, it is a 400 Bad Request; given an ErrorResponse, the status is the
    response's code. ``status_code`` is a modelport addition for the common case.
    """

    def __init__(self, response: str | ErrorResponse, status_code: int = 400) -> None:
        if isinstance(response, str):
            response = create_error_response(response, status_code=status_code)
        self.response = response
        super().__init__(response.error.message)

    def __str__(self) -> str:
        return self.response.error.message

    def as_dict(self) -> dict[str, Any]:
        """The body of this error."""
        return self.response.model_dump()
