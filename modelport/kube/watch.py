"""``?watch=true`` on a collection: a stream of ``{"type": ADDED|MODIFIED|DELETED, "object": ...}``
lines (API conventions, "Watch"), as ``kubectl get -w``, ``kubectl wait`` and informers read it.

- Without ``resourceVersion`` (or with "0") the stream starts with an ADDED event for each
  object that exists, then carries changes; with one, it carries the changes after it, and a
  resourceVersion older than the history kept gives an ``ERROR`` event with a 410 Expired
  Status, on which clients list again.
- ``timeoutSeconds`` ends the stream (default and bound: 30 minutes, kube-apiserver's
  ``--min-request-timeout``); clients then watch again from the last resourceVersion seen.
- With a label or field selector, an object that comes to match arrives as ADDED and one that
  stops matching as DELETED.
- Asked for Tables (kubectl get -w), each event carries a one-row Table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse

from modelport.kube import errors
from modelport.kube.cache import Event
from modelport.kube.errors import KubeError
from modelport.kube.resources import ResourceType
from modelport.kube.tables import table, wants_table
from modelport.kube.verbs import Verbs

MAX_TIMEOUT_S = 1800.0
# How soon changes made elsewhere (/api/v1, the controller's status) reach a watcher.
POLL_S = 0.5


def watching(request: Request) -> bool:
    return request.query_params.get("watch", "").lower() in ("true", "1")


async def watch(
    verbs: Verbs, request: Request, rtype: ResourceType, namespace: str | None
) -> StreamingResponse:
    """The event stream for a collection (one namespace, or all the caller may read)."""
    identity = verbs.identity(request)
    if namespace is not None:
        verbs.authorize(identity, rtype, namespace, None, "watch")
        visible: list[str] | None = [namespace] if rtype.namespaced else None
    else:
        visible = verbs.control.visible(identity) if rtype.namespaced else None
    matches = verbs.matcher(request)
    since = _resource_version(request.query_params.get("resourceVersion"))
    timeout = _timeout(request.query_params.get("timeoutSeconds"))
    as_table = wants_table(request.headers.get("accept", ""))
    include = request.query_params.get("includeObject", "Metadata")
    cache = verbs.caches[rtype]

    def wanted(obj: dict[str, Any]) -> bool:
        namespace_of = (obj.get("metadata") or {}).get("namespace", "")
        return (visible is None or namespace_of in visible) and matches(obj)

    def line(kind: str, obj: dict[str, Any]) -> bytes:
        if as_table and kind != "ERROR":
            rv = obj["metadata"]["resourceVersion"]
            obj = table(rtype, [obj], resource_version=rv, include=include)
        return orjson.dumps({"type": kind, "object": obj}) + b"\n"

    async def stream() -> AsyncIterator[bytes]:
        await cache.sync()
        after = since
        if after is None:
            after = cache.versions.value
            for entry in cache.entries():
                if wanted(entry.obj):
                    yield line("ADDED", entry.obj)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                events = await asyncio.wait_for(cache.next_events(after, POLL_S), remaining)
            except TimeoutError:
                return
            except KubeError as exc:  # 410 Expired
                yield line("ERROR", exc.body())
                return
            for event in events:
                after = event.rv
                kind = _seen_as(event, wanted)
                if kind is not None:
                    yield line(kind, event.obj)

    # Checked before the stream starts, so a resourceVersion too old is a plain 410.
    await cache.sync()
    if since is not None:
        cache.events_after(since)
    return StreamingResponse(stream(), media_type="application/json")


def _seen_as(event: Event, wanted: Callable[[dict[str, Any]], bool]) -> str | None:
    """The event as a watch with a selector sees it: an object that comes to match is
    ADDED, one that stops matching is DELETED (kube-apiserver's cacheWatcher does the same)."""
    now = wanted(event.obj)
    if event.type != "MODIFIED" or event.before is None:
        return event.type if now else None
    was = wanted(event.before)
    if was and now:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if was else None


def _resource_version(value: str | None) -> int | None:
    if value in (None, "", "0"):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid resourceVersion {value!r}") from None


def _timeout(value: str | None) -> float:
    if value is None:
        return MAX_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        raise errors.bad_request(f"invalid timeoutSeconds {value!r}") from None
    return min(max(seconds, 0.0), MAX_TIMEOUT_S)
