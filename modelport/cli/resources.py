"""kubectl-style commands against the control API: apply, get, describe, delete, logs, infer."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport.cli.failure import fail
from modelport.cli.graphs import describe_graph, graph_head, graph_row
from modelport.cli.platform_api import call
from modelport.cli.trained_models import describe_trained_model
from modelport.settings import NAMESPACE_ENV, URL_ENV

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar=URL_ENV, help="Platform URL."),
]
Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", envvar=NAMESPACE_ENV, help="Namespace [default: default]."),
]
Output = Annotated[
    str | None, typer.Option("--output", "-o", help="yaml, json or wide (table by default).")
]

KINDS = {
    "isvc": "inferenceservices",
    "inferenceservice": "inferenceservices",
    "inferenceservices": "inferenceservices",
    "servingruntime": "servingruntimes",
    "servingruntimes": "servingruntimes",
    "clusterservingruntime": "clusterservingruntimes",
    "clusterservingruntimes": "clusterservingruntimes",
    "namespace": "namespaces",
    "namespaces": "namespaces",
    "ns": "namespaces",
    "ig": "inferencegraphs",
    "inferencegraph": "inferencegraphs",
    "inferencegraphs": "inferencegraphs",
    "tm": "trainedmodels",
    "trainedmodel": "trainedmodels",
    "trainedmodels": "trainedmodels",
}
# Kinds read one by one at their own path, and listed across namespaces with -A.
NAMESPACED_LISTS = ("inferenceservices", "inferencegraphs", "trainedmodels")


def apply(
    filename: Annotated[
        list[str], typer.Option("--filename", "-f", help="YAML/JSON file, or - for stdin.")
    ],
    namespace: Namespace = None,
    url: UrlOption = None,
) -> None:
    """Create or update InferenceServices, InferenceGraphs, TrainedModels and ServingRuntimes
    from files."""
    for name in filename:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            fail(f"{name}: {exc.strerror}")
        params = {"namespace": namespace} if namespace else {}
        body = call(url, "POST", "/api/v1/apply", content=data, params=params).json()
        for r in body["results"]:
            typer.echo(f"{r['kind'].lower()}.serving.kserve.io/{r['name']} {r['action']}")
            for field in r.get("ignored") or []:
                typer.echo(f"  note: {field} is kept but not acted on by modelport", err=True)


def get(
    kind: Annotated[
        str, typer.Argument(help="isvc, ig, tm, servingruntimes, clusterservingruntimes, ns.")
    ],
    name: Annotated[str | None, typer.Argument(help="One object by name.")] = None,
    namespace: Namespace = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace you can read.")
    ] = False,
    output: Output = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Print again on changes.")] = False,
    url: UrlOption = None,
) -> None:
    """List objects, like kubectl get (NAME URL READY PREV LATEST AGE for isvc)."""
    resource = KINDS.get(kind.lower())
    if resource is None:
        fail(
            f"unknown kind {kind!r}; use isvc, ig, tm, servingruntimes, clusterservingruntimes "
            "or ns"
        )
    last = None
    while True:
        items = _fetch(resource, name, namespace, all_namespaces, url)
        text = _render(resource, items, output, all_namespaces)
        if text != last:
            typer.echo(text)
            last = text
        if not watch:
            return
        time.sleep(1.0)


def _fetch(
    resource: str, name: str | None, namespace: str | None, everywhere: bool, url: str | None
) -> list[dict[str, Any]]:
    ns = namespace or "default"
    if resource == "namespaces":
        return _items(url, "/api/v1/namespaces")
    if resource == "clusterservingruntimes":
        path = "/api/v1/clusterservingruntimes"
    elif resource in NAMESPACED_LISTS and name:
        return [call(url, "GET", f"/api/v1/namespaces/{ns}/{resource}/{name}").json()]
    elif everywhere and resource in NAMESPACED_LISTS:
        path = f"/api/v1/{resource}"
    else:
        path = f"/api/v1/namespaces/{ns}/{resource}"
    items = _items(url, path)
    if name:
        items = [i for i in items if (i.get("metadata") or {}).get("name") == name]
        if not items:
            fail(f"{resource} {name} not found")
    return items


def _items(url: str | None, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = call(url, "GET", path).json()["items"]
    return items


def _render(resource: str, items: list[dict[str, Any]], output: str | None, wide: bool) -> str:
    if output == "json":
        return json.dumps(items[0] if len(items) == 1 else {"items": items}, indent=2)
    if output == "yaml":
        import yaml

        return yaml.safe_dump(
            items[0] if len(items) == 1 else {"items": items}, sort_keys=False
        ).rstrip()
    if output not in (None, "wide"):
        fail(f"unknown output format {output!r}; use yaml, json or wide")
    if resource == "namespaces":
        rows = [["NAME", "OWNER", "ROLE"]] + [[i["name"], i["owner"], i["role"]] for i in items]
    elif resource == "inferenceservices":
        head = ["NAME", "URL", "READY", "PREV", "LATEST", "AGE"]
        if output == "wide":
            head[5:5] = ["REPLICAS", "LATESTREADYREVISION"]
        if wide:
            head.insert(0, "NAMESPACE")
        rows = [head] + [_isvc_row(i, output == "wide", wide) for i in items]
    elif resource in ("inferencegraphs", "trainedmodels"):
        rows = [graph_head(wide)] + [graph_row(i, wide) for i in items]
    else:
        rows = [["NAME", "FORMATS"]] + [
            [
                (i.get("metadata") or {}).get("name", ""),
                ",".join(
                    f.get("name", "")
                    for f in (i.get("spec") or {}).get("supportedModelFormats", [])
                ),
            ]
            for i in items
        ]
    if len(rows) == 1:
        return "No resources found."
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join(
        "   ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _isvc_row(item: dict[str, Any], wide: bool, with_ns: bool) -> list[str]:
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c["type"] == "Ready"), {}
    )
    traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
    latest = next((str(t["percent"]) for t in traffic if t.get("latestRevision")), "")
    prev = next((str(t["percent"]) for t in traffic if not t.get("latestRevision")), "")
    row = [
        meta.get("name", ""),
        status.get("url", ""),
        ready.get("status", "Unknown"),
        prev,
        latest,
        _age(meta.get("creationTimestamp")),
    ]
    if wide:
        predictor = (status.get("components") or {}).get("predictor") or {}
        row[5:5] = [str(status.get("replicas", 0)), predictor.get("latestReadyRevision", "")]
    if with_ns:
        row.insert(0, meta.get("namespace", ""))
    return row


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def describe(
    kind: Annotated[str, typer.Argument(help="isvc, ig or tm")],
    name: Annotated[str, typer.Argument(help="The object's name.")],
    namespace: Namespace = None,
    url: UrlOption = None,
) -> None:
    """Show an InferenceService's status (conditions, traffic, revisions, URL) or an
    InferenceGraph's (nodes, steps, conditions, URL)."""
    ns = namespace or "default"
    if KINDS.get(kind.lower()) == "inferencegraphs":
        graph = call(url, "GET", f"/api/v1/namespaces/{ns}/inferencegraphs/{name}").json()
        typer.echo(describe_graph(graph))
        return
    if KINDS.get(kind.lower()) == "trainedmodels":
        tm = call(url, "GET", f"/api/v1/namespaces/{ns}/trainedmodels/{name}").json()
        typer.echo(describe_trained_model(tm))
        return
    if KINDS.get(kind.lower()) != "inferenceservices":
        fail("describe supports isvc, ig and tm")
    item = call(url, "GET", f"/api/v1/namespaces/{ns}/inferenceservices/{name}").json()
    meta = item["metadata"]
    status = item.get("status") or {}
    lines = [
        f"Name:         {meta['name']}",
        f"Namespace:    {meta['namespace']}",
        f"Created:      {meta.get('creationTimestamp', '')}",
        f"Generation:   {meta.get('generation', '')}",
        f"URL:          {status.get('url', '')}",
        f"Address:      {(status.get('address') or {}).get('url', '')}",
        f"Replicas:     {status.get('replicas', 0)}",
        "Conditions:",
    ]
    for c in status.get("conditions", []):
        detail = " ".join(x for x in (c.get("reason", ""), c.get("message", "")) if x)
        lines.append(f"  {c['type']:16} {c['status']:8} {detail}")
    predictor = (status.get("components") or {}).get("predictor") or {}
    if predictor:
        lines.append("Predictor:")
        for key in (
            "latestCreatedRevision",
            "latestReadyRevision",
            "latestRolledoutRevision",
            "previousRolledoutRevision",
        ):
            if key in predictor:
                lines.append(f"  {key + ':':27} {predictor[key]}")
        lines.append("  Traffic:")
        for t in predictor.get("traffic", []):
            tag = " (latest)" if t.get("latestRevision") else ""
            lines.append(f"    {t['revisionName']:32} {t['percent']:>3}%{tag}")
    explainer = (status.get("components") or {}).get("explainer") or {}
    if explainer:
        lines.append("Explainer:")
        for key in ("latestCreatedRevision", "latestReadyRevision", "url"):
            if key in explainer:
                lines.append(f"  {key + ':':27} {explainer[key]}")
    typer.echo("\n".join(lines))


def delete(
    kind: Annotated[str | None, typer.Argument(help="isvc, servingruntime, ...")] = None,
    name: Annotated[str | None, typer.Argument(help="Name of the object.")] = None,
    filename: Annotated[
        str | None, typer.Option("--filename", "-f", help="Delete the objects in this file.")
    ] = None,
    namespace: Namespace = None,
    url: UrlOption = None,
) -> None:
    """Delete an InferenceService, InferenceGraph, TrainedModel or ServingRuntime (by name or
    by file)."""
    targets: list[tuple[str, str, str]] = []
    if filename:
        import yaml

        try:
            docs = [d for d in yaml.safe_load_all(Path(filename).read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            fail(f"{filename}: {exc}")
        for d in docs:
            meta = d.get("metadata") or {} if isinstance(d, dict) else {}
            resource = KINDS.get(str(d.get("kind", "")).lower()) if isinstance(d, dict) else None
            if resource is None or not meta.get("name"):
                fail(f"{filename}: cannot tell what to delete from a document")
            ns = meta.get("namespace") or namespace or "default"
            targets.append((resource, ns, meta["name"]))
    elif kind and name:
        resource = KINDS.get(kind.lower())
        if resource is None or resource == "namespaces":
            fail(f"cannot delete kind {kind!r}")
        targets.append((resource, namespace or "default", name))
    else:
        fail("give KIND NAME or -f FILE")
    for resource, ns, obj in targets:
        path = (
            f"/api/v1/clusterservingruntimes/{obj}"
            if resource == "clusterservingruntimes"
            else f"/api/v1/namespaces/{ns}/{resource}/{obj}"
        )
        call(url, "DELETE", path)
        typer.echo(f"{resource.removesuffix('s')}.serving.kserve.io/{obj} deleted")


def logs(
    name: Annotated[str, typer.Argument(help="InferenceService name.")],
    namespace: Namespace = None,
    component: Annotated[
        str, typer.Option(help="predictor, transformer or explainer.")
    ] = "predictor",
    tail: Annotated[int, typer.Option(help="Lines per replica.")] = 100,
    url: UrlOption = None,
) -> None:
    """Print the last lines of the service's model server logs."""
    ns = namespace or "default"
    text = call(
        url,
        "GET",
        f"/api/v1/namespaces/{ns}/inferenceservices/{name}/logs",
        params={"component": component, "tail": tail},
    ).text
    typer.echo(text, nl=False)


def infer(
    name: Annotated[str, typer.Argument(help="InferenceService name.")],
    data: Annotated[str, typer.Option("--data", "-d", help="JSON body, or @FILE.")],
    namespace: Namespace = None,
    protocol: Annotated[
        str | None,
        typer.Option(help="v1 or v2 [default: v1 if the body has 'instances', else v2]."),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Send one inference request through the gateway and print the answer."""
    if data.startswith("@"):
        try:
            raw = Path(data[1:]).read_bytes()
        except OSError as exc:
            fail(f"{data[1:]}: {exc.strerror}")
    else:
        raw = data.encode()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        fail(f"the request body is not JSON: {exc}")
    if protocol is None:
        protocol = "v1" if isinstance(body, dict) and "instances" in body else "v2"
    if protocol not in ("v1", "v2"):
        fail("--protocol must be v1 or v2")
    ns = namespace or "default"
    path = (
        f"/serving/{ns}/{name}/v1/models/{name}:predict"
        if protocol == "v1"
        else f"/serving/{ns}/{name}/v2/models/{name}/infer"
    )
    response = call(url, "POST", path, content=raw, headers={"Content-Type": "application/json"})
    typer.echo(json.dumps(response.json(), indent=2))
