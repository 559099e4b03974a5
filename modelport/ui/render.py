"""Pages from Jinja2 templates (autoescaped), with the headers every UI response carries."""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

# Only this origin's files run (no inline script or style); the page talks only to this
# origin; no framing; forms post only here.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
# Set by the "/" page's script when it loads the list into itself: the answer is then the
# page's main part only.
FRAGMENT_HEADER = "x-modelport-fragment"


def segment(value: object) -> str:
    """A URL path segment (a name can never add a segment of its own)."""
    return quote(str(value), safe="")


def _environment() -> Environment:
    folder = resources.files("modelport.ui") / "static"
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seg"] = segment
    return env


class Renderer:
    def __init__(self) -> None:
        self.env = _environment()

    def page(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        fragment = request.headers.get(FRAGMENT_HEADER) == "1"
        context.setdefault("title", "modelport")
        context.setdefault("flash", "")
        html = self.env.get_template(template).render(fragment=fragment, **context)
        return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def see_other(location: str) -> Response:
    """After a form: the browser GETs the result (so a reload repeats nothing)."""
    return RedirectResponse(location, 303, headers=SECURITY_HEADERS)
