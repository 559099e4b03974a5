"""Requests from the CLI to the platform's control API: which platform (``--url``,
``MODELPORT_URL`` or the one logged in to), which token (``MODELPORT_TOKEN`` or the saved
login's, refreshed when due), and a one-line error for every failure."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from modelport.cli.failure import fail
from modelport.cli.login import DEFAULT_URL
from modelport.settings import api_token


def platform_url(given: str | None) -> str:
    """--url / MODELPORT_URL, else the only platform logged in to, else the default."""
    if given:
        return given.rstrip("/")
    from modelport.client import credentials

    saved = list(credentials.load_all())
    return saved[0].rstrip("/") if len(saved) == 1 else DEFAULT_URL


def _bearer(base: str) -> str:
    """The token to send: MODELPORT_TOKEN (an API token), else the saved login's."""
    token = api_token()
    if token:
        return token
    from modelport.client import credentials

    entry = credentials.load(base)
    if entry and entry.get("expires_at", 0) - 60 > time.time():
        return str(entry["id_token"])
    # Missing or about to expire: the session module refreshes it (and explains failures).
    from modelport.client.session import valid_token

    return valid_token(base)


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def call(
    url: str | None,
    method: str,
    path: str,
    *,
    content: bytes | None = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request to the platform (urllib: these commands start in well under 200 ms)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from modelport.client.errors import LoginError

    base = platform_url(url)
    target = base + urllib.parse.quote(path, safe="/:@")
    if params:
        target += "?" + urllib.parse.urlencode(params)
    try:
        request = urllib.request.Request(target, data=content, method=method)
        request.add_header("Authorization", f"Bearer {_bearer(base)}")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                answer = Answer(response.status, response.read())
        except urllib.error.HTTPError as exc:
            answer = Answer(exc.code, exc.read())
    except LoginError as exc:
        fail(str(exc))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        fail(f"cannot reach {base}: {reason}")
    if answer.status >= 400:
        try:
            body = answer.json()
        except ValueError:
            body = {"error": answer.text.strip() or f"HTTP {answer.status}"}
        problems = body.get("problems") or []
        if problems:
            lines = [f"  {p['path']}: {p['message']}" for p in problems]
            fail("invalid spec:\n" + "\n".join(lines))
        fail(f"{body.get('error', answer.text)} ({answer.status})")
    return answer
