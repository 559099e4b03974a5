"""``modelport up``: the whole platform on one machine."""

from __future__ import annotations

import enum
import socket
from collections.abc import Iterator
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
from modelport.settings import DATABASE_URL_ENV, URL_ENV

if TYPE_CHECKING:  # the CLI stays quick to start: these import the whole platform
    import uvicorn
    from rich.console import Console

    from modelport.control.backends import Backend
    from modelport.platform import Platform


class OnOff(enum.StrEnum):
    on = "on"
    off = "off"


ConfigFile = Annotated[
    Path | None, typer.Option(help="A Dex config file (staticPasswords, staticClients, ...).")
]
Domain = Annotated[str, typer.Option(help="Services answer at Host: NAME.NAMESPACE.DOMAIN.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=DATABASE_URL_ENV,
        help="SQLAlchemy URL of the platform's database (services, users, sessions, "
        "tokens); instances on one database share them [default: SQLite in DATA_DIR].",
    ),
]
PublicUrl = Annotated[str | None, typer.Option(help="URL clients use [default: http://HOST:PORT].")]
ModelRoots = Annotated[
    list[Path],
    typer.Option(
        "--model-root",
        help="A local directory non-admin users may deploy models from (repeatable); "
        "admins may use any local path.",
    ),
]
Grace = Annotated[
    float,
    typer.Option(
        "--scale-to-zero-grace",
        help="Seconds an idle service with minReplicas 0 keeps its last replica.",
    ),
]
SelfService = Annotated[
    OnOff,
    typer.Option(
        "--namespace-self-service",
        help="on: signed-in people may create a namespace by deploying into it (as "
        "Kubeflow's registration flow allows); off: only admins create namespaces. "
        "Service accounts and API tokens never do.",
    ),
]
IsolationSwitch = Annotated[
    OnOff,
    typer.Option(
        "--isolation",
        help="Confine each replica (Landlock, and a uid per namespace when root); off only "
        "to debug a model that fails under it: its code then reads everything you can.",
    ),
]
NamespaceReplicas = Annotated[
    int,
    typer.Option(
        "--max-replicas-per-namespace",
        min=1,
        help="Replicas one namespace may run at once, across its services.",
    ),
]
MaxDownloadGb = Annotated[
    float,
    typer.Option(
        "--max-download-gb",
        min=0.001,
        help="Largest model download (http, s3, gs) in GiB; bigger ones fail their revision.",
    ),
]

ModelCacheGb = Annotated[
    float,
    typer.Option(
        "--model-cache-gb",
        min=0,
        help="Size of the model cache in GiB; past it, the least recently used models no "
        "replica serves are deleted.",
    ),
]


class BackendName(enum.StrEnum):
    process = "process"
    ray = "ray"


BackendChoice = Annotated[
    BackendName,
    typer.Option(
        "--backend",
        help="Where replicas run: process (this machine) or ray (actors across a Ray "
        "cluster; needs modelport[ray], see docs/ray.md).",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        help="The Ray cluster for --backend ray: HOST:PORT of its head, or auto (a cluster "
        "started on this machine) [default: auto].",
    ),
]

RaySharedDirs = Annotated[
    list[Path],
    typer.Option(
        "--ray-shared-dir",
        help="A folder every Ray node mounts at the same path (repeatable): models under it "
        "are used in place; others are copied to each node through Ray's object store.",
    ),
]


def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free port.")] = 8000,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    config: ConfigFile = None,
    domain: Domain = "example.com",
    database_url: DatabaseUrl = None,
    public_url: PublicUrl = None,
    model_root: ModelRoots = [],  # noqa: B006
    scale_to_zero_grace: Grace = 30.0,
    namespace_self_service: SelfService = OnOff.on,
    isolation: IsolationSwitch = OnOff.on,
    namespace_replicas: NamespaceReplicas = 32,
    trusted_proxy: TrustedProxies = [],  # noqa: B006
    max_download_gb: MaxDownloadGb = 20.0,
    model_cache_gb: ModelCacheGb = 50.0,
    backend: BackendChoice = BackendName.process,
    ray_address: RayAddress = None,
    ray_shared_dir: RaySharedDirs = [],  # noqa: B006
) -> None:
    """Run the platform: identity provider, gateway, control API and controller.

    The first admin comes from MODELPORT_ADMIN_EMAIL / MODELPORT_ADMIN_PASSWORD; without
    them a password is generated and printed once.
    """
    import logging

    from rich.console import Console

    from modelport.control.listener import reachable
    from modelport.gateway.server import trusted_proxies
    from modelport.identity.users import UserError
    from modelport.platform import build_platform

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # Revisions, restarts and failures are what an operator watches for.
    logging.getLogger("modelport.controller").setLevel(logging.INFO)
    console = Console(stderr=False, highlight=False)
    try:
        proxies = trusted_proxies(trusted_proxy)
    except ValueError as exc:
        unusable(str(exc))
    cfg = load_config(config)
    replicas = _backend(backend, ray_address, ray_shared_dir)
    if database_url and _without_password(database_url):
        typer.echo(
            "note: the database URL carries no password: the database holds the platform's "
            "signing keys, so make sure it asks for one (or a certificate) and that replicas "
            "cannot reach it (docs/security.md)",
            err=True,
        )
    sock = listen(host, port)
    base = (public_url or f"http://{host}:{sock.getsockname()[1]}").rstrip("/")
    for note in config_notes(cfg, f"{base}/dex", keep_issuer=keep_issuer_hint(cfg.issuer)):
        typer.echo(f"note: {note}", err=True)
    with console.status("starting modelport") as status:
        try:
            status.update("identity provider and gateway")
            platform = build_platform(
                data_dir,
                base,
                cfg,
                domain=domain,
                database_url=database_url,
                scale_to_zero_grace_s=scale_to_zero_grace,
                model_roots=model_root,
                namespace_self_service=namespace_self_service is OnOff.on,
                isolate_replicas=isolation is OnOff.on,
                max_replicas_per_namespace=namespace_replicas,
                max_download_bytes=int(max_download_gb * 2**30),
                max_cache_bytes=int(model_cache_gb * 2**30),
                trusted_proxies=proxies,
                backend=replicas,
                listen_address=reachable(host, sock.getsockname()[1]),
            )
        except (UserError, ValueError) as exc:
            unusable(str(exc))
        _started(console, platform, base)
    _banner(console, platform, base)
    _run(console, platform, sock, base)


def _without_password(url: str) -> bool:
    """Whether a server database's URL has no password (SQLite files have none to give)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # the store reports a malformed URL itself
    return not parsed.drivername.startswith("sqlite") and not parsed.password


def _backend(name: BackendName, ray_address: str | None, shared: list[Path]) -> Backend | None:
    """The backend asked for; None for the default (the controller's own)."""
    if name is BackendName.process:
        if ray_address or shared:
            typer.echo("note: --ray-* options are used only with --backend ray", err=True)
        return None
    try:
        from modelport.control.backends.ray import RayBackend
    except ImportError:
        unusable("--backend ray needs Ray: pip install 'modelport[ray]'")
    return RayBackend(ray_address or "auto", shared_dirs=tuple(shared))


def _started(console: Console, platform: Platform, base: str) -> None:
    """What runs and what holds on this host, one line each."""
    console.print(f"[green]✓[/] identity provider  {base}/dex")
    for holds, sentence in platform.isolation.report():
        mark = "[green]✓[/]" if holds else "[yellow]![/]"
        console.print(f"{mark} isolation          {sentence}", soft_wrap=True)
    services = len(platform.store.list("InferenceService"))
    console.print(f"[green]✓[/] control plane      {services} InferenceService(s) in store")


def _banner(console: Console, platform: Platform, base: str) -> None:
    """The generated password (once), where the platform is and how to use it."""
    if platform.generated_password:
        console.print(
            f"\nadmin user: {platform.admin_email}\n"
            f"password:   {platform.generated_password}\n"
            "(shown once; change it with `modelport users passwd`)\n"
        )
    console.print(f"modelport platform: {base}")
    console.print(f"  log in:  modelport login {base} -u {platform.admin_email}")
    console.print(f"  deploy:  modelport apply -f isvc.yaml   ({URL_ENV}={base})", soft_wrap=True)
    console.file.flush()


def _run(console: Console, platform: Platform, sock: socket.socket, base: str) -> None:
    """Serve until SIGINT/SIGTERM, then stop every replica."""
    import asyncio
    import signal

    from modelport.gateway.server import freeze_heap, uvicorn_config

    server = _server(uvicorn_config(platform.gateway, platform.gateway.config))

    def request_exit() -> None:
        server.should_exit = True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request_exit)
        try:
            await platform.start()
        except RuntimeError as exc:  # the Ray cluster cannot be reached
            await platform.stop()
            unusable(str(exc))
        # Again: a Ray driver's core worker installs its own SIGTERM handler, which dumps a
        # stack trace and exits without stopping anything.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request_exit)
        freeze_heap()
        endpoint = platform.kube_tls.endpoint() if platform.kube_tls is not None else None
        if endpoint is not None:
            console.print(
                f"  kubectl: modelport kubeconfig > kubeconfig.yaml   (API at {endpoint.server})",
                soft_wrap=True,
            )
            console.file.flush()
        try:
            await server.serve(sockets=[sock])
        finally:
            if platform.controller.backend.keeps_replicas:
                console.print("leaving replicas running for the next start to adopt")
            else:
                console.print("stopping replicas")
            await platform.stop()

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # uvloop, as uvicorn.run would pick: the gateway's proxying is loop-bound.
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(main())


def _server(config: uvicorn.Config) -> uvicorn.Server:
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but SIGINT/SIGTERM are ours: uvicorn re-raises the signal when it
        has shut down, which would end the process before the replicas are stopped."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)
