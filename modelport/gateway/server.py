"""Assemble identity provider + gateway for one process (``modelport gateway``), and the
uvicorn settings any process serving a gateway uses (``modelport gateway``, ``modelport up``)."""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from modelport.access.authz import Authorizer
from modelport.gateway.app import CALLBACK_PATHS, Gateway, GatewayConfig
from modelport.gateway.proxy import Upstream
from modelport.gateway.sessions import SessionStore
from modelport.identity.app import create_app
from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.db import make_engine, session_factory
from modelport.identity.dex_config import DexConfig
from modelport.identity.provider import Provider
from modelport.identity.shared_secrets import shared_secret


def build_gateway(
    data_dir: Path,
    issuer: str,
    upstream: str,
    config: DexConfig | None = None,
    gateway: GatewayConfig | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    database_url: str | None = None,
) -> Gateway:
    """A gateway in front of ``upstream`` with its own provider at ``issuer``.

    Users, clients, keys, tokens, sessions, namespaces and API tokens are kept in
    ``database_url`` when given (shared by every instance on it), else in DATA_DIR's SQLite.
    """
    config = config or DexConfig()
    gateway = gateway or GatewayConfig()
    engine = make_engine(database_url or f"sqlite:///{data_dir.resolve()}/identity.db")
    provider = Provider.create(issuer, session_factory(engine), config, clock=clock)
    configured = next((c for c in config.static_clients if c.id == gateway.client_id), None)
    if configured is not None and configured.secret:
        # The Dex config registers the gateway's client (as Kubeflow's does): use its secret,
        # and let it come back to the callbacks this gateway answers on (Kubeflow's config
        # names only its own gateway's, e.g. /oauth2/callback).
        gateway = dataclasses.replace(gateway, client_secret=configured.secret)
        provider.allow_redirects(gateway.client_id, list(CALLBACK_PATHS))
    else:
        # Otherwise register it, with a secret only this process knows, or, on a shared
        # database, one every instance on it knows (each exchanges codes with its own).
        secret = (
            shared_secret(engine, "gateway-client") if database_url else secrets.token_urlsafe(32)
        )
        gateway = dataclasses.replace(gateway, client_secret=secret)
        provider.directory.upsert_client(
            gateway.client_id,
            secret=gateway.client_secret,
            redirect_uris=list(CALLBACK_PATHS),
            name="modelport gateway",
            source="gateway",
        )
    return Gateway(
        provider,
        create_app(provider),
        SessionStore(engine, clock=clock),
        Upstream(upstream, max_body=gateway.max_body, clock=clock),
        gateway,
        Authorizer(engine, clock=clock),
    )


def trusted_proxies(values: Sequence[str]) -> list[str]:
    """``--trusted-proxy`` values checked: IP addresses or networks (CIDR); ValueError else.

    uvicorn silently takes anything it cannot parse as a literal host name, so a typo would
    leave the operator believing a proxy is trusted (or, with ``*``, trust every client).
    """
    checked = []
    for value in values:
        try:
            checked.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"--trusted-proxy {value!r}: give an IP address or network, e.g. 10.0.0.5 "
                "or 10.0.0.0/24"
            ) from None
    return checked


def uvicorn_config(app: Any, config: GatewayConfig) -> uvicorn.Config:
    """uvicorn's settings for a gateway: client addresses from X-Forwarded-For (and the
    scheme from X-Forwarded-Proto) only when the peer is one of ``config.trusted_proxies``.

    uvicorn's own default trusts FORWARDED_ALLOW_IPS or 127.0.0.1/::1, so any local client
    (and any proxy that passes a client's header on) could pick the address the per-address
    login throttle counts; the explicit empty list also keeps uvicorn from reading the
    environment.
    """
    proxies = list(config.trusted_proxies)
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
    )


def freeze_heap() -> None:
    """Keep what start-up built out of the cycle collector's full passes; call it once
    everything long-lived exists, just before serving.

    A gateway (with its identity provider) or a whole platform holds ~110k long-lived
    objects; a full collection walks them all, 20–90 ms on these machines, and under load
    that pause lands on the requests in flight as p99 latency. Frozen, a full pass walks
    only what came later.
    """
    gc.collect()
    gc.freeze()
