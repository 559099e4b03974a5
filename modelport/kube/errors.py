"""Kubernetes ``Status`` errors (meta/v1 Status, API conventions "Response Status Kind"):
``{"kind": "Status", "status": "Failure", "reason", "message", "details", "code"}``.

kubectl prints ``Error from server (REASON): MESSAGE`` from these, and client libraries
branch on ``reason`` and ``code`` (a 409 ``AlreadyExists`` differs from a 409 ``Conflict``),
so each reason carries the HTTP code and message form kube-apiserver uses
(k8s.io/apimachinery/pkg/api/errors).
"""

from __future__ import annotations

from typing import Any

from modelport.control.operations import ControlError, Forbidden, Invalid, NotFound
from modelport.control.spec import Problem


class KubeError(Exception):
    """An error answered as a Kubernetes ``Status`` with ``code`` and ``reason``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """The ``Status`` object."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


def qualified(plural: str, group: str) -> str:
    """``inferenceservices.serving.kserve.io`` (core resources have no group suffix)."""
    return f"{plural}.{group}" if group else plural


def _details(plural: str, group: str, name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"group": group, "kind": plural} if group else {"kind": plural}
    if name:
        out["name"] = name
    return out


def not_found(plural: str, group: str, name: str) -> KubeError:
    return KubeError(
        404,
        "NotFound",
        f'{qualified(plural, group)} "{name}" not found',
        details=_details(plural, group, name),
    )


def already_exists(plural: str, group: str, name: str) -> KubeError:
    return KubeError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        details=_details(plural, group, name),
    )


def conflict(plural: str, group: str, name: str) -> KubeError:
    # The optimistic-concurrency failure of an update with a stale resourceVersion.
    return KubeError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": the object '
        "has been modified; please apply your changes to the latest version and try again",
        details=_details(plural, group, name),
    )


def forbidden(
    plural: str, group: str, name: str | None, user: str, verb: str, namespace: str, why: str
) -> KubeError:
    """RBAC's wording (``User "u" cannot get resource ...``), then the platform's reason."""
    target = f'{qualified(plural, group)} "{name}"' if name else qualified(plural, group)
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{target} is forbidden: User "{user}" cannot {verb} resource "{plural}" '
        f'in API group "{group}"{scope}: {why}'
    )
    return KubeError(403, "Forbidden", message, details=_details(plural, group, name))


def invalid(kind: str, group: str, name: str, problems: list[Problem], message: str) -> KubeError:
    """422 with ``details.causes[]``: one ``FieldValueInvalid`` per field, as kubectl lists."""
    causes = [
        {"reason": "FieldValueInvalid", "message": p.message, "field": p.path} for p in problems
    ]
    listed = ", ".join(f"{p.path}: {p.message}" if p.path else p.message for p in problems)
    # apimachinery's NewInvalid: one cause as is, several in brackets.
    listed = f"[{listed}]" if len(problems) > 1 else listed
    text = f'{kind}.{group} "{name}" is invalid: {listed or message}'
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind, "causes": causes}
    return KubeError(422, "Invalid", text, details=details)


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def unauthorized() -> KubeError:
    return KubeError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(verb: str, what: str) -> KubeError:
    return KubeError(405, "MethodNotAllowed", f"the server does not allow this method on {what}")


def unsupported_media_type(content_type: str, supported: list[str]) -> KubeError:
    return KubeError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(supported)} (got {content_type!r})",
    )


def not_acceptable(supported: list[str]) -> KubeError:
    return KubeError(
        406, "NotAcceptable", f"only the following media types are accepted: {', '.join(supported)}"
    )


def expired(requested: int, oldest: int) -> KubeError:
    # A watch from a resourceVersion older than the history kept: clients list again.
    return KubeError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def too_large(limit: int) -> KubeError:
    return KubeError(413, "RequestEntityTooLarge", f"the request body exceeds {limit} bytes")


def from_control(
    exc: ControlError,
    *,
    plural: str,
    group: str,
    kind: str,
    name: str | None,
    user: str,
    verb: str,
    namespace: str,
) -> KubeError:
    """The control plane's refusal in the Kubernetes form its kind of error takes."""
    if isinstance(exc, Forbidden):
        return forbidden(plural, group, name, user, verb, namespace, str(exc))
    if isinstance(exc, NotFound):
        return not_found(plural, group, name or exc.name)
    if isinstance(exc, Invalid):
        problems = exc.problems or [Problem("", str(exc))]
        return invalid(kind, group, name or "", problems, str(exc))
    return unauthorized()
