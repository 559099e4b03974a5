"""The web UI's ASGI app, mounted by ``modelport up`` at ``/ui`` behind the gateway's
login; the list is also what a browser gets at ``/`` (home.py loads it into that page).

Every link is a bookmarkable URL:

  /ui/                                      services in every namespace the visitor sees
  /ui/ns/NS/services                        services in one namespace
  /ui/ns/NS/services/NAME?tab=TAB           one service (overview, details, try, canary, ...)
  /ui/ns/NS/services/NAME/delete            confirm, then POST to delete
  /ui/new, /ui/new/yaml                     create from a form, or from YAML
  /ui/status, /ui/ns/NS/services/NAME/status  live status (server-sent events)
  /ui/access, /ui/access/ns/NS              API tokens, sessions; a namespace's contributors
  /ui/graphs, /ui/ns/NS/graphs[/NAME]       InferenceGraphs, one with a drawing of its nodes
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.ui.access import AccessPages
from modelport.ui.base import PageError, Ui
from modelport.ui.create import CreatePages
from modelport.ui.csrf import CsrfGuard
from modelport.ui.graphs import GraphPages
from modelport.ui.live import LivePages
from modelport.ui.pages import ServicePages
from modelport.ui.render import Renderer

log = logging.getLogger("modelport.ui")

UI_PREFIX = "/ui"
SERVICE = "/ns/{namespace}/services/{name}"
GRAPH = "/ns/{namespace}/graphs/{name}"


def create_ui(api_app: Any, csrf: CsrfGuard | None = None) -> Starlette:
    """The UI over ``api_app`` (the control API's ASGI app, called in process)."""
    ui = Ui(api_app, Renderer(), csrf or CsrfGuard())
    services = ServicePages(ui)
    create = CreatePages(ui)
    live = LivePages(ui)
    access = AccessPages(ui)
    graphs = GraphPages(ui)
    routes = [
        Route("/", services.listing, methods=["GET"]),
        Route("/services", services.pick, methods=["GET"]),
        Route("/ns/{namespace}/services", services.listing, methods=["GET"]),
        Route(SERVICE, services.details, methods=["GET"]),
        Route(SERVICE + "/delete", services.confirm_delete, methods=["GET"]),
        Route(SERVICE + "/delete", services.delete, methods=["POST"]),
        Route(SERVICE + "/canary", create.canary, methods=["POST"]),
        Route(SERVICE + "/status", live.service, methods=["GET"]),
        Route("/status", live.listing, methods=["GET"]),
        Route("/new", create.form, methods=["GET"]),
        Route("/new", create.submit_form, methods=["POST"]),
        Route("/new/yaml", create.yaml_form, methods=["GET"]),
        Route("/new/yaml", create.submit_yaml, methods=["POST"]),
        Route("/graphs", graphs.listing, methods=["GET"]),
        Route("/graphs-in", services.pick_graphs, methods=["GET"]),
        Route("/ns/{namespace}/graphs", graphs.listing, methods=["GET"]),
        Route(GRAPH, graphs.details, methods=["GET"]),
        Route(GRAPH + "/delete", graphs.confirm_delete, methods=["GET"]),
        Route(GRAPH + "/delete", graphs.delete, methods=["POST"]),
        Route("/access", access.overview, methods=["GET"]),
        Route("/access/tokens", access.create_token, methods=["POST"]),
        Route("/access/tokens/{token_id}/revoke", access.revoke_token, methods=["POST"]),
        Route("/access/sign-out-everywhere", access.sign_out_everywhere, methods=["POST"]),
        Route("/access/ns/{namespace}", access.namespace, methods=["GET"]),
        Route("/access/ns/{namespace}/contributors", access.add_contributor, methods=["POST"]),
        Route(
            "/access/ns/{namespace}/contributors/{email}/remove",
            access.remove_contributor,
            methods=["POST"],
        ),
    ]

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return ui.error_page(request, exc.status, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return ui.error_page(request, 405, "That page cannot be used that way.")
        return ui.error_page(request, exc.status_code, "There is no such page.")

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("web UI error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
        message = "Something went wrong in the platform's web UI; its log says what."
        return ui.error_page(request, 500, message)

    return Starlette(
        routes=routes,
        exception_handlers={
            PageError: page_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
