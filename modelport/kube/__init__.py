"""A Kubernetes-style API over the control plane, so ``kubectl`` and ``kserve.KServeClient``
work against the platform unchanged through ``modelport kubeconfig``: discovery, OpenAPI,
``serving.kserve.io`` objects with get/list/create/update/patch/delete/watch, server-side
tables and ``Status`` errors. See app.py for the routes.
"""

from __future__ import annotations

from modelport.kube.app import KUBE_PREFIX, create_kube_api

__all__ = ["KUBE_PREFIX", "create_kube_api"]
