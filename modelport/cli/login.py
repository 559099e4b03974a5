"""``modelport login``, ``modelport token`` and ``modelport logout``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from modelport.cli.failure import fail
from modelport.settings import URL_ENV

DEFAULT_URL = "http://127.0.0.1:8000"
Url = Annotated[
    str,
    typer.Argument(envvar=URL_ENV, help="Platform URL.", show_default=True),
]


def login(
    url: Url = DEFAULT_URL,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Email to log in as.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    device: Annotated[
        bool, typer.Option("--device", help="Approve the login in a browser (device flow).")
    ] = False,
) -> None:
    """Log in and save tokens (0600, in your config dir); they refresh silently afterwards."""
    from modelport.client import LoginError, login_with_device, login_with_password

    if device:

        def show(link: str, code: str) -> None:
            typer.echo(f"Open {link}\nand confirm the code {code} (waiting for approval...)")

        try:
            login_with_device(url, show)
        except LoginError as exc:
            fail(f"login to {url} failed: {exc}")
        typer.echo(f"logged in to {url}")
        return
    user = username or typer.prompt("Email")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    try:
        login_with_password(url, user, password)
    except LoginError as exc:
        fail(f"login to {url} failed: {exc}")
    typer.echo(f"logged in to {url} as {user.strip().lower()}")


def token(
    url: Url = DEFAULT_URL,
    exec_credential: Annotated[
        bool,
        typer.Option(
            "--exec-credential",
            help="Print a client.authentication.k8s.io/v1 ExecCredential (kubectl's exec plugin).",
        ),
    ] = False,
) -> None:
    """Print a valid token, e.g. curl -H "Authorization: Bearer $(modelport token)"."""
    from modelport.client import LoginError, credentials
    from modelport.client.session import EXPIRY_MARGIN_S, valid_token

    try:
        value = valid_token(url)
    except LoginError as exc:
        fail(str(exc))
        return
    if not exec_credential:
        typer.echo(value)
        return
    from modelport.cli.kubeconfig import exec_credential as render

    # Expire it for kubectl before valid_token would refresh it, so kubectl runs the plugin
    # again (and gets the refreshed token) instead of sending one about to lapse.
    expires_at = (credentials.load(url) or {}).get("expires_at")
    typer.echo(render(value, float(expires_at) - EXPIRY_MARGIN_S if expires_at else None))


def logout(url: Url = DEFAULT_URL) -> None:
    """Revoke the saved refresh token at the platform and forget the login."""
    from modelport.client import credentials, revoke_saved

    revoke_saved(url)
    if credentials.forget(url):
        typer.echo(f"logged out of {url}")
    else:
        typer.echo(f"not logged in to {url}")
