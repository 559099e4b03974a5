"""Creating services from a form or from YAML, and the canary controls; all of them apply
documents through the control API, which validates them and answers with the problems."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlencode

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response

from modelport.ui import summary
from modelport.ui.apiclient import ApiReply
from modelport.ui.base import PageError, Ui, expect, service_page, service_path
from modelport.ui.pages import namespaces_of, runtime_docs
from modelport.ui.render import see_other

MAX_YAML_CHARS = 1 << 20
# The API's problem paths (metadata.name, spec.predictor.model.storageUri, ...) by the form
# field they name, matched on the path's end.
FIELD_PATHS = (
    ("metadata.name", "name"),
    ("metadata.namespace", "namespace"),
    ("modelFormat.name", "model_format"),
    ("modelFormat", "model_format"),
    ("storageUri", "storage_uri"),
    ("minReplicas", "min_replicas"),
    ("maxReplicas", "max_replicas"),
    ("canaryTrafficPercent", "canary"),
)
NUMBERS = (("min_replicas", "minReplicas"), ("max_replicas", "maxReplicas"))


def field_of(path: str) -> str | None:
    for suffix, name in FIELD_PATHS:
        if path == suffix or path.endswith("." + suffix):
            return name
    return None


def problems_of(reply: ApiReply) -> list[dict[str, str]]:
    body = reply.json() if reply.body.startswith(b"{") else None
    if isinstance(body, dict) and isinstance(body.get("problems"), list):
        return [{"path": str(p["path"]), "message": str(p["message"])} for p in body["problems"]]
    return [{"path": "", "message": reply.error()}]


def service_document(fields: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The InferenceService the form describes, and the problems the form itself can see
    (numbers that are not numbers); every other rule is the API's."""
    errors: dict[str, str] = {}
    predictor: dict[str, Any] = {
        "model": {
            "modelFormat": {"name": fields.get("model_format", "")},
            "storageUri": fields.get("storage_uri", "").strip(),
        }
    }
    for field, key in (*NUMBERS, ("canary", "canaryTrafficPercent")):
        text = fields.get(field, "").strip()
        if not text:
            continue
        try:
            predictor[key] = int(text)
        except ValueError:
            errors[field] = f"“{text}” is not a whole number."
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": fields.get("name", "").strip()},
        "spec": {"predictor": predictor},
    }
    return doc, errors


class CreatePages:
    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    async def _form_page(
        self,
        request: Request,
        fields: dict[str, str],
        errors: dict[str, str] | None = None,
        general: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        client = self.ui.client(request)
        namespaces = await namespaces_of(client)
        runtimes = await runtime_docs(client, fields.get("namespace") or None)
        return self.ui.page(
            request,
            "create.html",
            status,
            title="New InferenceService",
            namespaces=namespaces,
            formats=summary.model_formats(runtimes),
            fields=fields,
            errors=errors or {},
            general=general or [],
        )

    async def form(self, request: Request) -> Response:
        namespace = request.query_params.get("namespace", "")
        fields = {"namespace": namespace, "model_format": "sklearn", "min_replicas": "1"}
        if not namespace:
            client = self.ui.client(request)
            names = [str(n["name"]) for n in await namespaces_of(client)]
            # Someone with no namespace yet creates one by deploying into it: suggest one
            # named after them, as Kubeflow names a person's profile.
            fields["namespace"] = names[0] if names else own_namespace(client.identity.email)
        return await self._form_page(request, fields)

    async def submit_form(self, request: Request) -> Response:
        fields = await self.ui.checked_form(request)
        doc, errors = service_document(fields)
        namespace = fields.get("namespace", "").strip()
        if not namespace:
            errors["namespace"] = "Choose a namespace."
        if errors:
            return await self._form_page(request, fields, errors, status=422)
        reply = await self.ui.client(request).apply(orjson.dumps(doc), namespace)
        if reply.ok:
            name = doc["metadata"]["name"]
            return see_other(f"{service_page(namespace, name)}?{urlencode({'applied': name})}")
        general: list[str] = []
        for problem in problems_of(reply):
            field = field_of(problem["path"])
            if field is None:
                general.append(_sentence(problem))
            else:
                errors.setdefault(field, problem["message"])
        return await self._form_page(request, fields, errors, general, status=reply.status)

    async def yaml_form(self, request: Request) -> Response:
        text = ""
        source = request.query_params.get("edit", "")
        namespace = request.query_params.get("namespace", "")
        if source and namespace:
            doc = expect(await self.ui.client(request).get(service_path(namespace, source)))
            text = yaml.safe_dump(editable(doc), sort_keys=False)
        return self._yaml_page(request, text, namespace)

    def _yaml_page(
        self,
        request: Request,
        text: str,
        namespace: str,
        problems: list[dict[str, str]] | None = None,
        results: list[dict[str, Any]] | None = None,
        status: int = 200,
    ) -> Response:
        return self.ui.page(
            request,
            "create_yaml.html",
            status,
            title="Apply YAML",
            text=text,
            namespace=namespace,
            problems=problems or [],
            results=results or [],
        )

    async def submit_yaml(self, request: Request) -> Response:
        fields = await self.ui.checked_form(request)
        text, namespace = fields.get("yaml", ""), fields.get("namespace", "").strip()
        if not text.strip():
            problems = [{"path": "", "message": "Paste one or more YAML documents first."}]
            return self._yaml_page(request, text, namespace, problems, status=422)
        if len(text) > MAX_YAML_CHARS:
            problems = [{"path": "", "message": "That is more than 1 MiB of YAML."}]
            return self._yaml_page(request, text, namespace, problems, status=413)
        reply = await self.ui.client(request).apply(text.encode(), namespace or None)
        if not reply.ok:
            return self._yaml_page(
                request, text, namespace, problems_of(reply), status=reply.status
            )
        results = list(reply.json()["results"])
        return self._yaml_page(request, text, namespace, results=results)

    async def canary(self, request: Request) -> Response:
        """Set the canary's share, promote it (all traffic to the latest revision) or roll
        back (all traffic to the last rolled-out one): KServe's canaryTrafficPercent."""
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        fields = await self.ui.checked_form(request)
        client = self.ui.client(request)
        doc = editable(expect(await client.get(service_path(namespace, name))))
        predictor = doc["spec"].setdefault("predictor", {})
        message = canary_change(predictor, fields)
        reply = await client.apply(orjson.dumps(doc), namespace)
        if not reply.ok:
            text = "; ".join(_sentence(p) for p in problems_of(reply))
            raise PageError(reply.status, text)
        query = urlencode({"tab": "canary", "applied": message})
        return see_other(f"{service_page(namespace, name)}?{query}")


def canary_change(predictor: dict[str, Any], fields: dict[str, str]) -> str:
    """Changes the predictor as the canary form asks; a sentence saying what was done."""
    action = fields.get("action", "")
    if action == "promote":
        predictor.pop("canaryTrafficPercent", None)
        return "promoted the latest revision to all traffic"
    if action == "rollback":
        predictor["canaryTrafficPercent"] = 0
        return "rolled back: the latest revision gets no traffic"
    if action != "set":
        raise PageError(400, "Choose set, promote or roll back.")
    try:
        percent = int(fields.get("percent", ""))
    except ValueError as exc:
        raise PageError(422, "The canary share must be a whole number from 0 to 100.") from exc
    uri = fields.get("storage_uri", "").strip()
    if uri:
        _, model = summary.model_spec(predictor)
        model["storageUri"] = uri
    predictor["canaryTrafficPercent"] = percent
    return f"canary at {percent} %" + (f" for {uri}" if uri else "")


def own_namespace(email: str) -> str:
    """A DNS-label namespace name from the local part of an email address."""
    local = re.sub(r"[^a-z0-9-]+", "-", email.split("@")[0].lower()).strip("-")
    return local[:63].strip("-") or "my-namespace"


def editable(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as a person would apply it: no status, no server-set metadata."""
    out = copy.deepcopy(doc)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    out["metadata"] = {
        k: v for k, v in meta.items() if k not in ("generation", "creationTimestamp", "uid")
    }
    out.setdefault("spec", {})
    return out


def _sentence(problem: dict[str, str]) -> str:
    return f"{problem['path']}: {problem['message']}" if problem["path"] else problem["message"]
