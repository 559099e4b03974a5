"""The whole platform in one process (``modelport up``): identity provider, gateway with
routing and activator, control API, Kubernetes-style API, the page at ``/``, and the
controller that runs model servers. It assembles every plane, so it sits above them all,
below only the CLI (docs/architecture.md)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from modelport.control import listener
from modelport.control.api import ApiContext, create_api
from modelport.control.backends import Backend
from modelport.control.backends.isolation import Isolation, harden_platform, take_from_environment
from modelport.control.controller import Controller, ControllerConfig
from modelport.control.graphs import PlatformSite
from modelport.control.ha import SharedInstance
from modelport.control.leader_forward import LeaderForward, LeaderLocator
from modelport.control.leadership import shares_database, startup_lock
from modelport.control.routing import ServiceRouter
from modelport.control.storage import DEFAULT_MAX_CACHE_BYTES, DEFAULT_MAX_DOWNLOAD_BYTES, Storage
from modelport.control.store import Store
from modelport.gateway.app import Gateway, GatewayConfig
from modelport.gateway.server import build_gateway, uvicorn_config
from modelport.identity.dex_config import DexConfig
from modelport.kube import KUBE_PREFIX, create_kube_api
from modelport.kube.tls import TLSListener
from modelport.settings import first_admin
from modelport.ui.home import STATIC_PREFIX, HomePage

DEFAULT_ADMIN = "admin@example.com"
# Under /k8s: what only this instance can say (``modelport kubeconfig``'s cluster entry).
INSTANCE_OWN_PATHS = frozenset({"/modelport/cluster"})


@dataclass
class Platform:
    gateway: Gateway
    controller: Controller
    store: Store
    # Set only when this start created the admin with a generated password (shown once).
    admin_email: str
    generated_password: str | None
    router: ServiceRouter
    isolation: Isolation
    # HTTPS for kubectl beside a plain-HTTP platform (kube/tls.py says why).
    kube_tls: TLSListener | None = None
    # On a shared database: the controller runs only while this instance leads
    # (docs/high-availability.md).
    shared: SharedInstance | None = None

    async def start(self) -> None:
        """Start what runs beside the HTTP server: payload logger, controller, replicas."""
        await self.router.logger.start()
        if self.shared is not None:
            await self.shared.start()
        else:
            await self.controller.start()
        if self.kube_tls is not None:
            await self.kube_tls.start()

    async def stop(self) -> None:
        """Stop every replica and flush queued payload-log events."""
        if self.kube_tls is not None:
            await self.kube_tls.stop()
        if self.shared is not None:
            await self.shared.stop()
        else:
            await self.controller.stop()
        await self.router.logger.close()
        await self.gateway.upstream.close()


def build_platform(
    data_dir: Path,
    base_url: str,
    config: DexConfig | None = None,
    *,
    domain: str = "example.com",
    database_url: str | None = None,
    scale_to_zero_grace_s: float = 30.0,
    model_roots: list[Path] | None = None,
    namespace_self_service: bool = True,
    isolate_replicas: bool = True,
    max_replicas_per_namespace: int = 32,
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES,
    trusted_proxies: list[str] | None = None,
    backend: Backend | None = None,
    listen_address: str | None = None,
) -> Platform:
    """Everything ``modelport up`` serves, with state under ``data_dir``.

    ``listen_address`` (host:port) is where this process's own listener is, for the other
    instances on a shared database to reach it while it leads; by default, the one the
    CLI bound (``control/listener.py``)."""
    data_dir = data_dir.resolve()
    harden_platform(data_dir)
    isolation = Isolation.detect(data_dir, enabled=isolate_replicas)
    base_url = base_url.rstrip("/")
    # Instances starting together on one database set up its shared rows one at a time.
    with startup_lock(database_url):
        gateway = build_gateway(
            data_dir,
            f"{base_url}/dex",
            # Unused as a destination: each request names its replica. Its pooled client is
            # shared.
            "http://127.0.0.1",
            config,
            GatewayConfig(domain=domain, trusted_proxies=list(trusted_proxies or [])),
            database_url=database_url,
        )
        admin_email, password = _ensure_admin(gateway)
        if gateway.authorizer.get_namespace("default") is None:
            # Owned by the admin from the start: the first user to deploy there must not own it.
            gateway.authorizer.create_namespace("default", admin_email)
    store = Store.open(database_url or f"sqlite:///{data_dir}/control.db")
    storage = Storage(
        data_dir / "cache",
        data_dir / "volumes",
        max_download_bytes=max_download_bytes,
        max_cache_bytes=max_cache_bytes,
    )
    controller_config = ControllerConfig(
        data_dir=data_dir,
        domain=domain,
        scale_to_zero_grace_s=scale_to_zero_grace_s,
        max_replicas_per_namespace=max_replicas_per_namespace,
        isolation=isolation,
    )
    controller = Controller(store, storage, controller_config, backend=backend)
    router = ServiceRouter(controller)
    gateway.router = router
    # InferenceGraphs run here in the gateway, each step through the router above (graph/).
    from modelport.control.graphs import serve_graphs

    gateway.router, gateway.admission = serve_graphs(
        router, gateway.admission, store, controller, domain
    )
    api_context = ApiContext(
        store=store,
        controller=controller,
        authorizer=gateway.authorizer,
        is_admin=_admin_check(gateway),
        domain=domain,
        gateway_url=lambda: base_url,
        model_roots=list(model_roots or []),
        namespace_self_service=namespace_self_service,
    )
    kube_tls = _mount_apps(gateway, api_context, data_dir, base_url)
    platform = Platform(
        gateway, controller, store, admin_email, password, router, isolation, kube_tls
    )
    if shares_database(database_url):
        graph_site = getattr(gateway.router, "site", None)

        def adopt(fresh: Controller) -> None:
            platform.controller = router.controller = api_context.controller = fresh
            if isinstance(graph_site, PlatformSite):
                graph_site.controller = fresh  # graphs' serviceName paths come from it

        platform.shared = SharedInstance(
            store,
            base_url,
            gateway,
            router,
            # A controller stopped on losing the lease cannot start again: a new one leads.
            lambda: Controller(store, storage, controller_config, backend=backend),
            adopt,
            address=listen_address or listener.bound(),
        )
        _forward_to_leader(gateway, platform.shared, store)
    return platform


def _forward_to_leader(gateway: Gateway, shared: SharedInstance, store: Store) -> None:
    """On a standby, the control API, the Kubernetes-style API and the web UI answer from
    the leader, whose controller alone knows replicas, logs and metrics
    (control/leader_forward.py). Wraps what ``_mount_apps`` mounted, leaving it as it is."""
    forward = LeaderForward(
        shared.leading,
        LeaderLocator(store.engine, shared.elector.holder),
        gateway.config.client_secret,
        gateway.upstream,
    )
    for prefix, app in list(gateway.mounts.items()):
        # kubeconfig's cluster entry names this instance's own https listener and its CA
        # (kube/tls.py), which relays like the rest: the leader's would break at failover.
        local = INSTANCE_OWN_PATHS if prefix == KUBE_PREFIX else frozenset()
        gateway.mounts[prefix] = forward.wrap(app, prefix, local)
    if gateway.home is not None:
        gateway.home = forward.wrap(gateway.home, "")


def _mount_apps(
    gateway: Gateway, api_context: ApiContext, data_dir: Path, base_url: str
) -> TLSListener | None:
    """The authenticated applications: the page at "/" with its files under /_ui, the
    control API at /api, the Kubernetes-style API at /k8s (and on its own https port when
    the platform's URL is http: kubectl sends credentials only over https)."""
    # The page for people at "/", its files under /_ui, and the web UI's pages under /ui,
    # which call the control API in process as the visitor (modelport/ui, docs/ui.md).
    import hashlib
    import hmac

    from modelport.control.api_access import SIGN_OUT_STATE
    from modelport.ui.app import UI_PREFIX, create_ui
    from modelport.ui.csrf import CsrfGuard

    gateway.home = HomePage()
    gateway.mounts[STATIC_PREFIX] = gateway.home
    api = create_api(api_context)
    directory = gateway.provider.directory

    def sign_out_everywhere(email: str) -> None:
        directory.sign_out_everywhere(email)
        gateway.authn.cache.clear()  # sessions cached as valid end now, not in 2 s

    setattr(api.state, SIGN_OUT_STATE, sign_out_everywhere)
    gateway.mounts["/api"] = api
    # The UI's CSRF key from the gateway's client secret, which instances sharing a database
    # share too: a form made by one instance is accepted by the other.
    secret = gateway.config.client_secret.encode()
    key = hmac.new(secret, b"modelport ui csrf", hashlib.sha256).digest() if secret else None
    gateway.mounts[UI_PREFIX] = create_ui(api, CsrfGuard(key))
    # kubectl's paths (/api, /apis, /version) under a prefix of their own: a kubeconfig's
    # server is PLATFORM_URL/k8s (modelport kubeconfig), clear of /api/v1 and the models.
    kube_tls = None
    if urlsplit(base_url).scheme == "http":
        kube_tls = TLSListener(
            gateway,
            lambda app: uvicorn_config(app, gateway.config),
            data_dir / "kube-tls",
            urlsplit(base_url).hostname or "127.0.0.1",
            KUBE_PREFIX,
        )
    gateway.mounts[KUBE_PREFIX] = create_kube_api(
        api_context, endpoint=kube_tls.endpoint if kube_tls else None
    )
    return kube_tls


def _admin_check(gateway: Gateway) -> Callable[[str], bool]:
    directory = gateway.provider.directory

    def is_admin(email: str) -> bool:
        user = directory.get_user(email)
        return bool(user and user.admin)

    return is_admin


def _ensure_admin(gateway: Gateway) -> tuple[str, str | None]:
    """The first admin, from MODELPORT_ADMIN_EMAIL/PASSWORD or generated (printed once)."""
    directory = gateway.provider.directory
    # The password is taken out of the environment, and out of /proc/PID/environ: nothing
    # started later (replicas, zygote) and no process reading ours may see it.
    admin = first_admin(take=take_from_environment)
    email = (DEFAULT_ADMIN if admin.email is None else admin.email).strip().lower()
    given = admin.password
    if directory.get_user(email) is not None:
        return email, None
    password = given or secrets.token_urlsafe(12)
    directory.add_user(email, password, username=email.split("@")[0], admin=True)
    return email, None if given else password
