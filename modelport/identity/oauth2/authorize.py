"""The browser half of the code flow: /auth, the password login page, /approval.

The hops are Dex's (see docs/compat/dex-authservice-facts.md §2): ``/auth`` stores the
request and answers 302 to ``/auth/local?req=ID``; the login form posts ``login`` and
``password`` back to that URL; success is 303 to ``/approval?req=ID&hmac=…``, which with
``skipApprovalScreen`` answers 303 to ``redirect_uri?code=…&state=…``. The newer Dex URL
``/auth/local/login?back=&state=ID`` serves the same form, so scripts written for either
version work. The unguessable request ID binds the login POST (no further CSRF token, as in
Dex); the approval step is bound to it by an HMAC.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelport.identity.db import AuthRequest, Client
from modelport.identity.oauth2.params import oversized, scope_list, too_long
from modelport.identity.oauth2.pkce import METHODS, well_formed_challenge
from modelport.identity.provider import OOB_REDIRECT, Provider, request_hmac

SCOPE_DESCRIPTIONS = {
    "offline_access": "Have offline access",
    "profile": "View basic profile information",
    "email": "View your email address",
    "groups": "View your groups",
}


def page(provider: Provider, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render one of the provider's pages."""
    html = provider.templates.get_template(template).render(issuer=provider.issuer, **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(provider: Provider, status: int, title: str, message: str) -> HTMLResponse:
    """An error shown to the person in the browser (never redirected anywhere)."""
    return page(provider, "error.html", status, title=title, message=message)


def with_query(url: str, **params: str) -> str:
    """``url`` with parameters added to its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


async def authorize(request: Request) -> Response:
    """GET /auth: validate the request, store it, and send the browser to the login form."""
    provider: Provider = request.app.state.provider
    # Reads the client and writes the request: SQLite may wait on its lock, so not on the loop.
    return await run_in_threadpool(_authorize, provider, request.query_params)


def _authorize(provider: Provider, q: QueryParams) -> Response:
    client = provider.directory.get_client(q.get("client_id", ""))
    if client is None:
        return error_page(
            provider, 404, "Not Found", f'Invalid client_id ("{q.get("client_id", "")}").'
        )
    redirect_uri = q.get("redirect_uri", "")
    if not provider.redirect_allowed(client, redirect_uri):
        return error_page(
            provider, 400, "Bad Request", f'Unregistered redirect_uri ("{redirect_uri}").'
        )
    state = q.get("state", "")
    # An oversized state is not echoed back: the client never sent a state it could check.
    echoed = "" if too_long("state", state) else state

    def fail(error: str, description: str) -> Response:
        return RedirectResponse(
            with_query(redirect_uri, error=error, error_description=description, state=echoed),
            status_code=303,
        )

    problem = oversized(state=state, nonce=q.get("nonce", ""), scope=q.get("scope", ""))
    if problem:
        return fail("invalid_request", problem)
    scopes = scope_list(q.get("scope", ""))
    problem = provider.scope_problem(client, scopes)
    if problem:
        return fail("invalid_scope", problem)
    response_types = q.get("response_type", "").split()
    if not response_types:
        return fail("invalid_request", "No response_type provided")
    if response_types != ["code"]:
        # Dex echoes what it got; a bounded part of it, or the redirect URL itself grows
        # without bound (a 10,000-character response_type found by the fuzz test).
        shown = str(response_types)[:80]
        return fail("unsupported_response_type", f"Unsupported response type {shown}")
    challenge = q.get("code_challenge", "")
    # Dex: the method defaults to plain and must be supported even without a challenge.
    method = q.get("code_challenge_method") or "plain"
    if method not in METHODS:
        return fail("invalid_request", "Unsupported PKCE challenge method.")
    if challenge and not well_formed_challenge(challenge):
        return fail("invalid_request", "Invalid code_challenge (RFC 7636: 43 to 128 characters).")
    method = method if challenge else ""
    # The device flow's own requests carry S256 too (see device.py), so no exception here.
    if client.public and method != "S256":
        return fail("invalid_request", "Public clients must use PKCE with S256.")
    req = provider.new_auth_request(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=q.get("nonce", ""),
        code_challenge=challenge,
        code_challenge_method=method,
        force_approval=q.get("approval_prompt") == "force",
    )
    return RedirectResponse(f"{provider.path}/auth/local?req={req.request_id}", status_code=302)


def _pending(provider: Provider, request_id: str) -> AuthRequest | None:
    if not request_id:
        return None
    with provider.sessions() as db:
        req = db.get(AuthRequest, request_id)
    if req is None or req.expires_at < provider.clock.time():
        return None
    return req


def _request_id(request: Request) -> str:
    # Old Dex: /auth/local?req=ID; Dex >= 2.29: /auth/local/login?back=&state=ID.
    return request.query_params.get("req") or request.query_params.get("state") or ""


async def login(request: Request) -> Response:
    """GET shows the password form; POST checks ``login``/``password``."""
    provider: Provider = request.app.state.provider
    req = await run_in_threadpool(_pending, provider, _request_id(request))
    if req is None:
        return error_page(provider, 400, "Bad Request", "Login session expired.")
    # The form posts back to the URL it was served from, as Dex's does.
    query = request.url.query
    post_url = request.url.path + (f"?{query}" if query else "")
    if request.method == "GET":
        return page(provider, "password.html", post_url=post_url, username="", error="")
    form = await request.form()
    email = str(form.get("login", ""))
    password = str(form.get("password", ""))
    directory = provider.directory
    address = request.client.host if request.client else ""
    if provider.throttle.blocked(address):
        return page(
            provider,
            "password.html",
            429,
            post_url=post_url,
            username=email,
            error="Too many failed logins from your address; try again later.",
        )
    if await run_in_threadpool(directory.is_locked, email):
        return page(
            provider,
            "password.html",
            429,
            post_url=post_url,
            username=email,
            error="Too many failed logins for this account; try again in a few minutes.",
        )
    user = await directory.login(email, password)
    if user is None:
        provider.throttle.failed(address)
        return page(
            provider,
            "password.html",
            post_url=post_url,
            username=email,
            error="Invalid Email Address and password.",
        )
    req = await run_in_threadpool(_logged_in, provider, req.request_id, user.user_id)
    if req is None:
        return error_page(provider, 400, "Bad Request", "Login session expired.")
    return RedirectResponse(
        f"{provider.path}/approval?req={req.request_id}&hmac={request_hmac(req)}", status_code=303
    )


def _logged_in(provider: Provider, request_id: str, user_id: str) -> AuthRequest | None:
    with provider.sessions.begin() as db:
        stored = db.get(AuthRequest, request_id)
        if stored is not None:
            stored.user_id = user_id
    return stored


async def approval(request: Request) -> Response:
    """GET: skip or show the approval page; POST: the person's answer."""
    provider: Provider = request.app.state.provider
    if request.method == "POST":
        form = await request.form()
        request_id = str(form.get("req", ""))
        answer = str(form.get("approval", ""))
    else:
        request_id = request.query_params.get("req", "")
        answer = ""
    given = request.query_params.get("hmac", "")
    return await run_in_threadpool(
        _approval, provider, request_id, given, answer if request.method == "POST" else None
    )


def _approval(provider: Provider, request_id: str, given: str, answer: str | None) -> Response:
    """``answer`` is the form's, or None for a GET."""
    req = _pending(provider, request_id)
    if req is None:
        return error_page(provider, 400, "Bad Request", "User session error.")
    if not hmac.compare_digest(given, request_hmac(req)):
        return error_page(provider, 401, "Unauthorized", "Unauthorized request")
    if not req.user_id:
        return error_page(provider, 400, "Bad Request", "Login process not yet finalized.")
    if answer is not None:
        if answer != "approve":
            return RedirectResponse(
                with_query(
                    req.redirect_uri,
                    error="access_denied",
                    error_description="The request was not approved.",
                    state=req.state,
                ),
                status_code=303,
            )
        return _finish(provider, req)
    if provider.skip_approval and not req.force_approval:
        return _finish(provider, req)
    with provider.sessions() as db:
        client = db.scalar(select(Client).where(Client.client_id == req.client_id))
    return page(
        provider,
        "approval.html",
        client_name=(client.name or client.client_id) if client else req.client_id,
        scopes=[SCOPE_DESCRIPTIONS[s] for s in req.scopes if s in SCOPE_DESCRIPTIONS],
        req=req.request_id,
    )


def _finish(provider: Provider, req: AuthRequest) -> Response:
    code = provider.issue_code(req)
    if req.redirect_uri == OOB_REDIRECT:
        return page(
            provider,
            "error.html",
            title="Login Successful",
            message=f"Copy this code back to your application: {code}",
        )
    return RedirectResponse(
        with_query(req.redirect_uri, code=code, state=req.state), status_code=303
    )
