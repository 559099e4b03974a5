"""``modelport identity``: run the OpenID Connect provider alone, and manage its users."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli.failure import unusable
from modelport.settings import DATABASE_URL_ENV

if TYPE_CHECKING:  # not a cycle: every CLI command imports this module, so it stays light
    from sqlalchemy.engine import Engine

    from modelport.identity.db import Sessions
    from modelport.identity.dex_config import DexConfig

app = typer.Typer(
    rich_markup_mode=None,
    help="The Dex-compatible OpenID Connect provider and its users.",
    no_args_is_help=True,
)
users = typer.Typer(
    rich_markup_mode=None,
    help="Manage password users (stored in DATA_DIR/identity.db).",
    no_args_is_help=True,
)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where the identity database lives.")]
DEFAULT_DATA_DIR = Path("modelport-data")
# The platform's shared database (``modelport up --database-url``): users, namespaces and
# tokens are there, not in DATA_DIR, when instances share one.
SharedDatabase = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=DATABASE_URL_ENV,
        show_envvar=True,
        help="The platform's shared database (as given to `modelport up --database-url`) "
        "[default: DATA_DIR/identity.db].",
    ),
]
TrustedProxies = Annotated[
    list[str],
    typer.Option(
        "--trusted-proxy",
        help="A proxy (IP address or network) whose X-Forwarded-For names the client "
        "(repeatable) [default: none; the peer's address counts].",
    ),
]


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def load_config(path: Path | None) -> DexConfig:
    """The Dex config at ``path``; exits with the reason if unusable. Without one, Kubeflow's
    defaults: its Dex config sets ``oauth2.skipApprovalScreen: true`` (common/dex in
    kubeflow/manifests), and the seed's curl flow expects ``/dex/approval`` to answer 303."""
    import os

    from modelport.identity.dex_config import ConfigError, DexConfig, load_dex_config

    if path is None:
        return DexConfig(skip_approval_screen=True)
    try:
        # As Dex does, idEnv/secretEnv/hashFromEnv name variables of this process's environment.
        return load_dex_config(path, env=os.environ)
    except ConfigError as exc:
        unusable(f"{path}: {exc}")


def keep_issuer_hint(issuer: str | None) -> str:
    """How to make the platform serve as a Dex config's issuer: it is always PUBLIC_URL/dex."""
    base = (issuer or "").rstrip("/")
    if base.endswith("/dex"):
        return f"start with --public-url {base.removesuffix('/dex')}"
    return "serve it at a URL ending in /dex and pass that URL without /dex as --public-url"


def config_notes(cfg: DexConfig, issuer: str, *, keep_issuer: str) -> list[str]:
    """What a Dex config asks for that this process does not do, one start-up line each.

    ``keep_issuer`` tells how to serve as the config's issuer instead (a flag to pass).
    """
    notes = []
    if cfg.container:
        notes.append(f"read the Dex config held in {cfg.container}")
    if cfg.issuer and cfg.issuer.rstrip("/") != issuer.rstrip("/"):
        # Dex serves at its configured issuer; here the issuer is where clients reach us, so
        # tokens and discovery stay usable (a cluster-internal name would not resolve).
        notes.append(
            f"the config's issuer {cfg.issuer} is not used: the issuer is {issuer} "
            f"(to keep the config's, {keep_issuer})"
        )
    if cfg.ignored:
        notes.append(f"config keys not acted on: {', '.join(cfg.ignored)}")
    return notes


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks one); exits with the reason if it cannot bind.

    It listens before any banner is printed, so connections made right after the banner
    wait in the backlog instead of being refused.
    """
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # protocol says TCP, and with Nagle on a response written in two parts waits ~40 ms
    # for the client's delayed ACK on keep-alive connections.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        unusable(f"cannot bind {host}:{port}: {exc.strerror}")
    sock.listen(2048)
    from modelport.control.listener import remember

    # An instance on a shared database tells the others where it listens (leader_forward.py).
    remember(host, sock.getsockname()[1])
    return sock


def identity_database(data_dir: Path, database_url: str | None) -> str:
    """Where users, namespaces and tokens are: the shared database if one is named, else
    DATA_DIR's SQLite file (as ``build_gateway`` chooses for the platform)."""
    return database_url or f"sqlite:///{data_dir.resolve()}/identity.db"


def identity_engine(data_dir: Path, database_url: str | None = None) -> Engine:
    """The database of users, namespaces and tokens; exits with the reason if unusable."""
    from modelport.identity.db import make_engine

    try:
        return make_engine(identity_database(data_dir, database_url))
    except Exception as exc:  # a bad URL or an unreachable server: say which, not a trace
        unusable(f"cannot open the database: {type(exc).__name__}: {_first_line(exc)}")


def _sessions(data_dir: Path, database_url: str | None = None) -> Sessions:
    from modelport.identity.db import session_factory

    return session_factory(identity_engine(data_dir, database_url))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


@app.command("serve")
def serve(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    config: Annotated[
        Path | None,
        typer.Option(help="A Dex config file (staticPasswords, staticClients, expiry, oauth2)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free port.")] = 5556,
    issuer: Annotated[
        str | None, typer.Option(help="Issuer URL [default: http://HOST:PORT/dex].")
    ] = None,
    alg: Annotated[
        list[str], typer.Option(help="Signing algorithms, first is used (RS256, ES256).")
    ] = ["RS256"],  # noqa: B006
) -> None:
    """Serve the provider: /dex/.well-known/openid-configuration, /dex/auth, /dex/token, ..."""
    import uvicorn

    from modelport.identity.app import create_app
    from modelport.identity.provider import Provider
    from modelport.identity.users import UserError

    cfg = load_config(config)
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    issuer_url = (issuer or f"http://{host}:{bound}/dex").rstrip("/")
    try:
        provider = Provider.create(issuer_url, _sessions(data_dir), cfg, algs=tuple(alg))
    except (UserError, ValueError) as exc:
        unusable(str(exc))
    for note in config_notes(cfg, issuer_url, keep_issuer=f"start with --issuer {cfg.issuer}"):
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"modelport identity provider: issuer {issuer_url}", err=False)
    typer.echo(f"  discovery {issuer_url}/.well-known/openid-configuration", err=False)
    uvicorn.Server(uvicorn.Config(create_app(provider), log_level="warning", access_log=False)).run(
        sockets=[sock]
    )


@users.command("add")
def add_user(
    email: str,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: SharedDatabase = None,
    username: Annotated[
        str, typer.Option(help="Display name [default: the email's local part].")
    ] = "",
    group: Annotated[
        list[str], typer.Option(help="A group the user belongs to (repeatable).")
    ] = [],  # noqa: B006
    admin: Annotated[bool, typer.Option(help="Give the user admin rights.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user; the password is asked for (or read from stdin)."""
    from modelport.identity.passwords import WeakPassword
    from modelport.identity.users import Directory, UserError

    password = _read_password(password_stdin)
    try:
        Directory(_sessions(data_dir, database_url)).add_user(
            email, password, username=username, groups=group, admin=admin
        )
    except (UserError, WeakPassword) as exc:
        unusable(str(exc))
    typer.echo(f"added {email.strip().lower()}")


@users.command("list")
def list_users(data_dir: DataDir = DEFAULT_DATA_DIR, database_url: SharedDatabase = None) -> None:
    """List users: email, name, groups, admin, source."""
    from modelport.identity.users import Directory

    rows = Directory(_sessions(data_dir, database_url)).list_users()
    typer.echo(f"{'EMAIL':32} {'NAME':16} {'GROUPS':24} {'ADMIN':5} SOURCE")
    for u in rows:
        admin = "yes" if u.admin else "no"
        typer.echo(f"{u.email:32} {u.username:16} {','.join(u.groups):24} {admin:5} {u.source}")


@users.command("passwd")
def passwd(
    email: str,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: SharedDatabase = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password (also lifts a lockout)."""
    from modelport.identity.passwords import WeakPassword
    from modelport.identity.users import Directory, UserError

    password = _read_password(password_stdin)
    try:
        Directory(_sessions(data_dir, database_url)).set_password(email, password)
    except (UserError, WeakPassword) as exc:
        unusable(str(exc))
    typer.echo(f"password changed for {email.strip().lower()}")


@users.command("delete")
def delete(
    email: str, data_dir: DataDir = DEFAULT_DATA_DIR, database_url: SharedDatabase = None
) -> None:
    """Delete a user."""
    from modelport.cli.access import _authorizer
    from modelport.identity.users import Directory, UserError

    try:
        Directory(_sessions(data_dir, database_url)).delete_user(email)
    except UserError as exc:
        unusable(str(exc))
    # API tokens live in the access store: they go with the account (sessions and JWTs
    # already stopped working in delete_user).
    revoked = _authorizer(data_dir, database_url).revoke_tokens_of(email.strip())
    note = f"; revoked {revoked} API token(s)" if revoked else ""
    typer.echo(f"deleted {email.strip().lower()}{note}")


def _read_password(from_stdin: bool) -> str:
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password
