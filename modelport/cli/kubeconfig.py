"""``modelport kubeconfig``: a kubeconfig through which ``kubectl`` and ``kserve.KServeClient``
reach the platform's Kubernetes-style API, authenticating with the saved login.

The user entry runs an exec credential plugin (client.authentication.k8s.io/v1,
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins):
``modelport token --exec-credential URL`` prints an ``ExecCredential`` with the login's current
token and its expiry, so kubectl asks again (and the login refreshes silently) once it lapses.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from modelport.cli.failure import fail
from modelport.settings import CONFIG_DIR_ENV, NAMESPACE_ENV, URL_ENV, explicit_config_dir

# Where the platform serves the Kubernetes-style API (modelport.kube.KUBE_PREFIX, not imported:
# this command stays free of the server's imports). kubectl accepts a server URL with a path
# and puts /api, /apis, /version under it, clear of /api/v1 and the model routes.
KUBE_PREFIX = "/k8s"
EXEC_API_VERSION = "client.authentication.k8s.io/v1"


def kubeconfig(
    url: Annotated[
        str | None,
        typer.Option("--url", envvar=URL_ENV, help="Platform URL."),
    ] = None,
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace",
            "-n",
            envvar=NAMESPACE_ENV,
            help="Default namespace of the context.",
        ),
    ] = "default",
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name of the cluster, user and context [default: from URL]."),
    ] = None,
) -> None:
    """Print a kubeconfig for the platform you logged in to (kubectl, KServeClient).

    Save it and point kubectl at it: modelport kubeconfig > ~/.kube/modelport.yaml;
    export KUBECONFIG=~/.kube/modelport.yaml; kubectl get isvc
    """
    from modelport.cli.platform_api import platform_url
    from modelport.client import credentials

    base = platform_url(url)
    if credentials.load(base) is None:
        fail(f"not logged in to {base}; run `modelport login {base}` first")
    import yaml

    cluster = fetch_cluster(base)
    config = build_kubeconfig(
        base, cluster=cluster, namespace=namespace, name=name or context_name(base)
    )
    typer.echo(yaml.safe_dump(config, sort_keys=False), nl=False)


def fetch_cluster(base: str) -> dict[str, str]:
    """The platform's kubeconfig ``cluster`` entry: its HTTPS endpoint for kubectl and the CA
    that signed it (kubectl sends no credentials to a plain-HTTP server)."""
    import httpx

    from modelport.client import LoginError, valid_token

    try:
        token = valid_token(base)
        answer = httpx.get(
            f"{base}{KUBE_PREFIX}/modelport/cluster",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=30,
        )
    except (LoginError, httpx.HTTPError) as exc:
        fail(f"cannot ask {base} for its Kubernetes-style API: {exc}")
    if answer.status_code != 200:
        fail(f"{base} serves no Kubernetes-style API ({answer.status_code})")
    cluster = answer.json().get("cluster")
    if not isinstance(cluster, dict) or not isinstance(cluster.get("server"), str):
        fail(f"{base} answered without a cluster entry")
    if cluster["server"].startswith("http://"):
        typer.echo(
            "warning: the API is served over plain HTTP; kubectl sends no credentials there",
            err=True,
        )
    return {k: str(v) for k, v in cluster.items()}


def build_kubeconfig(
    base: str, *, cluster: dict[str, str], namespace: str, name: str
) -> dict[str, Any]:
    """The kubeconfig document (clientcmd's v1 Config) for a platform URL; the exec plugin
    gets tokens from ``base``, kubectl talks to ``cluster['server']``."""
    exec_config: dict[str, Any] = {
        "apiVersion": EXEC_API_VERSION,
        "command": plugin_command()[0],
        "args": [*plugin_command()[1:], "token", "--exec-credential", base],
        # The plugin never prompts: a lapsed login says so on stderr and kubectl shows it.
        "interactiveMode": "Never",
        "provideClusterInfo": False,
    }
    explicit = explicit_config_dir()
    if explicit is not None:
        # The saved login lives there; kubectl may run from a shell without that variable.
        exec_config["env"] = [{"name": CONFIG_DIR_ENV, "value": str(explicit.resolve())}]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"exec": exec_config}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def plugin_command() -> list[str]:
    """How kubectl runs this installation's CLI: an absolute path, since kubectl may run with
    another PATH (an IDE, a notebook kernel) than the shell that wrote the kubeconfig."""
    beside = Path(sys.executable).parent / "modelport"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("modelport")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "modelport"]


def context_name(base: str) -> str:
    """``modelport-HOST-PORT``: distinct per platform, so kubeconfigs merge without clashes."""
    parts = urlsplit(base)
    host = (parts.hostname or "local").replace(".", "-").replace(":", "-")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"modelport-{host}-{port}"


def exec_credential(token: str, expires_at: float | None) -> str:
    """An ``ExecCredential`` (client.authentication.k8s.io/v1) carrying a bearer token."""
    status: dict[str, Any] = {"token": token}
    if expires_at:
        from datetime import UTC, datetime

        when = datetime.fromtimestamp(expires_at, UTC)
        status["expirationTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"apiVersion": EXEC_API_VERSION, "kind": "ExecCredential", "spec": {}, "status": status}
    return json.dumps(body)
