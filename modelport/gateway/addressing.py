"""Which InferenceService (namespace, name) a request addresses, from its path and Host.

One function for the gateway's own routing and for ``/authz``, the check a proxy in front of
us asks (Envoy ext_authz, nginx ``auth_request``). Two ways to name a service:

- the path prefix ``/serving/NAMESPACE/NAME/...``, spelled canonically: the raw path starts
  with the literal ``/serving/``, namespace and name are not percent-encoded, and the decoded
  path has no ``.``/``..``/empty segments, ``;`` or ``%`` (see ``paths.is_canonical``).
  A path that any proxy's normalisation (``paths.widest_reading``) would turn into
  ``/serving/...`` but that is not canonical is refused: a proxy may route ``//serving/b/x``
  or ``/%73erving/b/x`` to namespace b, so deciding on another reading would check the wrong
  namespace;
- the Host (HTTP/2 ``:authority``): ``NAME.NAMESPACE.<domain>`` (Knative's default domain
  template), or the cluster-local authorities Istio routes by — ``NAME.NAMESPACE.svc``,
  ``NAME.NAMESPACE.svc.cluster.local``, with KServe's component suffixes ``-predictor`` and
  ``-predictor-default`` — with or without a port.

When both name a namespace they must agree: the gateway routes by the path, an Istio or nginx
front may route by the Host.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelport.gateway.paths import is_canonical, widest_reading

PREFIX = "/serving/"
_RAW_PREFIX = PREFIX.encode()
# Istio's in-mesh authorities for a Kubernetes Service (FQDN and the search-path short form).
CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")
# KServe names a component's Service NAME-predictor (raw deployment, KServe >= 0.11) or
# NAME-predictor-default (serverless, KServe < 0.11); the InferenceService is NAME.
COMPONENT_SUFFIXES = ("-predictor-default", "-predictor")
# Bytes after which a path may read differently to some proxy (see paths.widest_reading).
_AMBIGUOUS = (b"%", b"\\", b"//", b"/.", b";")


@dataclass(frozen=True)
class Address:
    """Where a request goes: the service (or None, None) and the path to forward there."""

    namespace: str | None
    name: str | None
    path: str
    raw_path: bytes


def address(raw_path: bytes, path: str, host: str, domain: str) -> Address | str:
    """The service a request addresses, or why its address is refused.

    ``raw_path`` is the path as sent, ``path`` its percent-decoded form (as the ASGI server
    gives both), ``host`` the Host header, ``domain`` the Host-based routing domain.
    """
    by_host = host_service(host, domain)
    if raw_path.startswith(_RAW_PREFIX) or _reads_as_serving(raw_path):
        found = _serving(raw_path, path)
        if isinstance(found, str):
            return found
        if by_host is not None and by_host[0] != found.namespace:
            return "The path and the Host header name different namespaces."
        return found
    if by_host is not None:
        return Address(by_host[0], by_host[1], path, raw_path)
    return Address(None, None, path, raw_path)


def host_service(host: str, domain: str) -> tuple[str, str] | None:
    """(namespace, name) from a Host header, or None when it names no service."""
    hostname, colon, port = host.lower().rpartition(":")
    if not colon:
        hostname = port
    elif not port.isdigit() or "]" in hostname:
        return None  # a malformed port, or an IP-literal: no service name in it
    hostname = hostname.removesuffix(".")  # the absolute form of the same name
    for suffix in ("." + domain.lower().strip("."), *CLUSTER_SUFFIXES):
        if not hostname.endswith(suffix):
            continue
        labels = hostname[: -len(suffix)].split(".")
        if len(labels) != 2 or not all(labels):
            continue
        name, namespace = labels
        if suffix in CLUSTER_SUFFIXES:
            name = _component_of(name)
        return namespace, name
    return None


def _component_of(name: str) -> str:
    for suffix in COMPONENT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _reads_as_serving(raw_path: bytes) -> bool:
    if not any(marker in raw_path for marker in _AMBIGUOUS):
        return raw_path[: len(_RAW_PREFIX)].lower() == _RAW_PREFIX
    return widest_reading(raw_path).startswith(PREFIX)


def _serving(raw_path: bytes, path: str) -> Address | str:
    """The service of a ``/serving/`` path, or why it is refused."""
    if not raw_path.startswith(_RAW_PREFIX) or not is_canonical(path):
        return "Paths below /serving/ must be canonical."
    parts = path.split("/", 4)
    raw = raw_path.split(b"/", 4)
    if len(parts) < 4 or not parts[2] or not parts[3]:
        return "Use /serving/NAMESPACE/NAME/... to address a model."
    if raw[2] != parts[2].encode() or raw[3] != parts[3].encode():
        # An encoded "/" would split the raw and decoded paths differently.
        return "Namespace and name must not be percent-encoded."
    rest = "/" + (parts[4] if len(parts) > 4 else "")
    # The rest is forwarded as sent (still percent-encoded), never re-encoded from its
    # decoded form: a decoded %0d%0a must not become a line break upstream.
    raw_rest = b"/" + (raw[4] if len(raw) > 4 else b"")
    return Address(parts[2], parts[3], rest, raw_rest)
