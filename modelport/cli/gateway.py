"""``modelport gateway``: the authenticating gateway, with its identity provider at /dex."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli.failure import unusable
from modelport.cli.identity import (
    DEFAULT_DATA_DIR,
    DataDir,
    TrustedProxies,
    config_notes,
    keep_issuer_hint,
    listen,
    load_config,
)

if TYPE_CHECKING:  # not a cycle: every CLI command imports this module, so it stays light
    from modelport.gateway.trusted import TrustedIssuer


def gateway(
    upstream: Annotated[
        str, typer.Option(help="URL of the server to protect, e.g. a `modelport serve`.")
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    config: Annotated[
        Path | None, typer.Option(help="A Dex config file (staticPasswords, staticClients, ...).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free port.")] = 8000,
    public_url: Annotated[
        str | None, typer.Option(help="URL clients use [default: http://HOST:PORT].")
    ] = None,
    trust_issuer: Annotated[
        list[str],
        typer.Option(
            "--trust-issuer",
            help="Also accept tokens of an external OIDC issuer: URL=AUDIENCE (repeatable).",
        ),
    ] = [],  # noqa: B006
    accept_audience: Annotated[
        list[str],
        typer.Option(
            "--accept-audience",
            help="A client whose users' tokens from /dex are accepted (repeatable) "
            "[default: kubeflow-oidc-authservice and modelport-cli].",
        ),
    ] = [],  # noqa: B006
    trusted_proxy: TrustedProxies = [],  # noqa: B006
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Benchmarks only: forward everything unauthenticated."),
    ] = False,
) -> None:
    """Serve the authenticating gateway with its identity provider at /dex."""
    import dataclasses

    import uvicorn

    from modelport.gateway.app import GatewayConfig
    from modelport.gateway.server import (
        build_gateway,
        freeze_heap,
        trusted_proxies,
        uvicorn_config,
    )
    from modelport.identity.users import UserError

    cfg = load_config(config)
    sock = listen(host, port)
    base = (public_url or f"http://{host}:{sock.getsockname()[1]}").rstrip("/")
    for note in config_notes(cfg, f"{base}/dex", keep_issuer=keep_issuer_hint(cfg.issuer)):
        typer.echo(f"note: {note}", err=True)
    try:
        settings = GatewayConfig(
            auth_disabled=no_auth,
            trusted_proxies=trusted_proxies(trusted_proxy),
            trusted=_trusted_issuers(trust_issuer),
        )
        if accept_audience:
            settings = dataclasses.replace(settings, audiences=list(accept_audience))
        app = build_gateway(data_dir, f"{base}/dex", upstream, cfg, settings)
    except (UserError, ValueError) as exc:
        unusable(str(exc))
    if no_auth:
        typer.echo("WARNING: --no-auth: every request is forwarded unauthenticated", err=True)
    typer.echo(f"modelport gateway: {base} -> {upstream}")
    typer.echo(f"  issuer {base}/dex")
    typer.echo(f"  discovery {base}/dex/.well-known/openid-configuration")
    freeze_heap()
    uvicorn.Server(uvicorn_config(app, settings)).run(sockets=[sock])


def _trusted_issuers(specs: list[str]) -> list[TrustedIssuer]:
    """``--trust-issuer URL=AUDIENCE`` values, discovered now where reachable."""
    from modelport.gateway.trusted import TrustedIssuer

    trusted = []
    for spec in specs:
        url, sep, audience = spec.rpartition("=")
        if not sep or not url or not audience:
            unusable(f"--trust-issuer {spec!r}: use URL=AUDIENCE")
        trusted.append(TrustedIssuer(url.rstrip("/"), audience))
    for t in trusted:
        try:
            t.discover()
        except Exception as exc:  # unreachable now: keys are fetched again on first use
            typer.echo(f"warning: {t.issuer}: discovery failed ({type(exc).__name__})", err=True)
    return trusted
