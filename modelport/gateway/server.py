"""Assemble identity provider + gateway for one process (``modelport gateway``)."""

from __future__ import annotations

import secrets
from pathlib import Path

from modelport.gateway.app import Gateway, GatewayConfig
from modelport.gateway.authz import Authorizer
from modelport.gateway.proxy import Upstream
from modelport.gateway.sessions import SessionStore
from modelport.identity.app import create_app
from modelport.identity.db import make_engine, session_factory
from modelport.identity.dex_config import DexConfig
from modelport.identity.provider import Provider


def build_gateway(
    data_dir: Path,
    issuer: str,
    upstream: str,
    config: DexConfig | None = None,
    gateway: GatewayConfig | None = None,
) -> Gateway:
    """A gateway in front of ``upstream`` with its own provider at ``issuer``."""
    config = config or DexConfig()
    gateway = gateway or GatewayConfig()
    engine = make_engine(f"sqlite:///{data_dir.resolve()}/identity.db")
    provider = Provider.create(issuer, session_factory(engine), config)
    configured = next((c for c in config.static_clients if c.id == gateway.client_id), None)
    if configured is not None and configured.secret:
        # The Dex config registers the gateway's client (as Kubeflow's does): use its secret.
        gateway.client_secret = configured.secret
    else:
        # Otherwise register it, with a secret only this process knows.
        gateway.client_secret = secrets.token_urlsafe(32)
        provider.directory.upsert_client(
            gateway.client_id,
            secret=gateway.client_secret,
            redirect_uris=["/login/oidc", "/authservice/oidc/callback"],
            name="modelport gateway",
            source="gateway",
        )
    return Gateway(
        provider,
        create_app(provider),
        SessionStore(engine),
        Upstream(upstream, max_body=gateway.max_body),
        gateway,
        Authorizer(engine),
    )
