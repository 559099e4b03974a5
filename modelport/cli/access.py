"""``modelport namespaces`` and ``modelport tokens``: who may use which namespace.

These act on the platform's database directly, as its local administrator: DATA_DIR's SQLite
file (``--data-dir``), or the database instances share (``--database-url``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli.failure import unusable
from modelport.cli.identity import DEFAULT_DATA_DIR, DataDir, SharedDatabase

if TYPE_CHECKING:  # not a cycle: every CLI command imports this module, so it stays light
    from modelport.access.authz import Authorizer

namespaces = typer.Typer(
    rich_markup_mode=None, help="Namespaces, their owners and contributors.", no_args_is_help=True
)
tokens = typer.Typer(
    rich_markup_mode=None,
    help="API tokens for machines, scoped to a namespace and role.",
    no_args_is_help=True,
)


def _authorizer(data_dir: Path, database_url: str | None = None) -> Authorizer:
    from modelport.access.authz import Authorizer
    from modelport.cli.identity import identity_engine

    return Authorizer(identity_engine(data_dir, database_url))


def _is_admin(data_dir: Path, email: str, database_url: str | None = None) -> bool:
    from modelport.cli.identity import _sessions
    from modelport.identity.users import Directory

    user = Directory(_sessions(data_dir, database_url)).get_user(email)
    return bool(user and user.admin)


@namespaces.command("create")
def create_namespace(
    name: str,
    owner: Annotated[str, typer.Option(help="Email of the namespace's owner.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: SharedDatabase = None,
) -> None:
    """Create a namespace."""
    from modelport.access.authz import AuthzError

    try:
        _authorizer(data_dir, database_url).create_namespace(name, owner)
    except AuthzError as exc:
        unusable(str(exc))
    typer.echo(f"namespace {name} created, owner {owner.lower()}")


@namespaces.command("add-contributor")
def add_contributor(
    name: str,
    email: str,
    role: Annotated[
        str, typer.Option(help="view (read, infer) or edit (also deploy, delete).")
    ] = "view",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: SharedDatabase = None,
) -> None:
    """Give a user a role in a namespace."""
    from modelport.access.authz import AuthzError

    try:
        _authorizer(data_dir, database_url).set_contributor(name, email, role)
    except AuthzError as exc:
        unusable(str(exc))
    typer.echo(f"{email.lower()} can now {role} namespace {name}")


@namespaces.command("remove-contributor")
def remove_contributor(
    name: str,
    email: str,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: SharedDatabase = None,
) -> None:
    """Take a user's role in a namespace away."""
    from modelport.access.authz import AuthzError

    try:
        _authorizer(data_dir, database_url).remove_contributor(name, email)
    except AuthzError as exc:
        unusable(str(exc))
    typer.echo(f"{email.lower()} removed from namespace {name}")


@namespaces.command("list")
def list_namespaces(
    data_dir: DataDir = DEFAULT_DATA_DIR, database_url: SharedDatabase = None
) -> None:
    """List namespaces and owners."""
    typer.echo(f"{'NAME':24} OWNER")
    for ns in _authorizer(data_dir, database_url).list_namespaces():
        typer.echo(f"{ns.name:24} {ns.owner}")


def _ttl(text: str) -> float:
    from modelport.identity.dex_config import parse_duration

    if text.endswith("d") and text[:-1].isdigit():
        return int(text[:-1]) * 86400.0
    return parse_duration(text)


@tokens.command("create")
def create_token(
    namespace: Annotated[str, typer.Option(help="The namespace the token may act in.")],
    owner: Annotated[str, typer.Option(help="Email of the user the token acts for.")],
    role: Annotated[str, typer.Option(help="view or edit.")] = "view",
    ttl: Annotated[
        str | None, typer.Option(help="Lifetime such as 30d, 12h, 90m [default: none].")
    ] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: SharedDatabase = None,
) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    from modelport.access.authz import AuthzError

    try:
        seconds = _ttl(ttl) if ttl else 0.0
    except ValueError as exc:
        unusable(f"--ttl: {exc}")
    try:
        value = _authorizer(data_dir, database_url).create_token(
            owner,
            namespace,
            role,
            ttl_s=seconds,
            description=description,
            admin=_is_admin(data_dir, owner, database_url),
        )
    except AuthzError as exc:
        unusable(str(exc))
    typer.echo(value)


@tokens.command("list")
def list_tokens(
    owner: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: SharedDatabase = None,
) -> None:
    """List tokens (never their secrets)."""
    typer.echo(f"{'ID':18} {'NAMESPACE':16} {'ROLE':5} {'OWNER':28} {'EXPIRES':20} STATUS")
    now = time.time()
    for t in _authorizer(data_dir, database_url).list_tokens(owner):
        expires = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(t.expires_at))
            if t.expires_at
            else "never"
        )
        status = (
            "revoked"
            if t.revoked
            else ("expired" if t.expires_at and t.expires_at < now else "active")
        )
        typer.echo(
            f"{t.token_id:18} {t.namespace:16} {t.role:5} {t.owner:28} {expires:20} {status}"
        )


@tokens.command("revoke")
def revoke_token(
    token_id: str, data_dir: DataDir = DEFAULT_DATA_DIR, database_url: SharedDatabase = None
) -> None:
    """Revoke a token by its ID (the part after mpt_ and before the next _)."""
    from modelport.access.authz import AuthzError

    try:
        _authorizer(data_dir, database_url).revoke_token(
            token_id.removeprefix("mpt_").split("_")[0]
        )
    except AuthzError as exc:
        unusable(str(exc))
    typer.echo(f"revoked {token_id}")
