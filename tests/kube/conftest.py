"""An in-process Kubernetes-style API over a real store, authorizer and (not started)
controller; requests carry the identity the gateway would have put in the scope."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from modelport.access.authz import Authorizer
from modelport.access.caller import Identity
from modelport.control.controller import Controller, ControllerConfig
from modelport.control.operations import ApiContext
from modelport.control.storage import Storage
from modelport.control.store import Store
from modelport.gateway.app import IDENTITY_KEY
from modelport.kube import create_kube_api

ADMIN = "admin@example.com"
ALICE = "alice@example.com"  # owns namespace team-a
BOB = "bob@example.com"  # view role in team-a
CAROL = "carol@example.com"  # no role anywhere
BASE = "/apis/serving.kserve.io/v1beta1"


@dataclass
class Kube:
    """The API app and what it works on."""

    app: Any
    store: Store
    authorizer: Authorizer
    model_dir: Path
    admins: set[str] = field(default_factory=lambda: {ADMIN})

    def client(self, who: str | Identity = ADMIN, **headers: str) -> httpx.AsyncClient:
        identity = who if isinstance(who, Identity) else Identity(who)
        app = self.app

        async def with_identity(scope: dict, receive: Callable, send: Callable) -> None:
            await app({**scope, IDENTITY_KEY: identity}, receive, send)

        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=with_identity),
            base_url="http://kube",
            headers={"Accept": "application/json", **headers},
        )

    def isvc(self, name: str, namespace: str = "team-a", **labels: str) -> dict[str, Any]:
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": "sklearn"},
                        "storageUri": f"file://{self.model_dir}",
                    }
                }
            },
        }


@pytest.fixture
def kube(tmp_path: Path) -> Kube:
    store = Store.open(f"sqlite:///{tmp_path}/control.db")
    authorizer = Authorizer(create_engine(f"sqlite:///{tmp_path}/authz.db"))
    authorizer.create_namespace("default", ADMIN)
    authorizer.create_namespace("team-a", ALICE)
    authorizer.set_contributor("team-a", BOB, "view")
    controller = Controller(
        store,
        Storage(tmp_path / "cache", tmp_path / "volumes"),
        ControllerConfig(data_dir=tmp_path),
    )
    models = tmp_path / "models"
    models.mkdir()
    harness = Kube(None, store, authorizer, models)
    ctx = ApiContext(
        store=store,
        controller=controller,
        authorizer=authorizer,
        is_admin=lambda email: email in harness.admins,
        domain="example.com",
        gateway_url=lambda: "http://platform",
        model_roots=[models],
    )
    harness.app = create_kube_api(ctx)
    return harness
