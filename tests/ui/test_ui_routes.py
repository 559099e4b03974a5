"""The web UI's routes over real sockets, without a browser: pages for the admin and for an
outsider, escaping of hostile values, CSRF refusals, per-namespace authorization (the same
answers as the API's), forms and their validation, canary actions, live status."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import httpx
import yaml

from tests.e2e.conftest import ADMIN, ADMIN_PASSWORD
from tests.helpers.login import five_step_login
from tests.ui.conftest import Ui, csrf_of

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def hostile_service(name: str, namespace: str = "default") -> str:
    quoted = HOSTILE.replace("'", "''")
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"  annotations:\n    note: '{quoted}'\n"
        f"  labels:\n    team: evil\n"
        "spec:\n  predictor:\n    minReplicas: 0\n    model:\n"
        "      modelFormat: {name: sklearn}\n"
        f"      storageUri: 'http://127.0.0.1:9/{quoted}'\n"
    )


def apply(ui: Ui, text: str, headers: dict[str, str]) -> None:
    r = httpx.post(f"{ui.platform.url}/api/v1/apply", content=text, headers=headers)
    assert r.status_code == 200, r.text


def assert_escaped(html: str, shown: bool = True) -> None:
    assert "<img src=x" not in html and "<script>alert" not in html
    assert not shown or "&lt;img src=x onerror=alert(1)&gt;" in html


class _Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_no_inline_code(html: str) -> None:
    parser = _Tags()
    parser.feed(html)
    assert parser.tags
    for tag, attrs in parser.tags:
        assert tag != "script" or attrs.get("src"), "an inline script"
        assert tag != "style", "an inline stylesheet"
        assert "style" not in attrs, (tag, attrs)
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert tag not in ("img", "iframe", "object", "embed"), (tag, attrs)


def test_pages_escape_hostile_values(ui: Ui):
    apply(ui, hostile_service("hostile"), ui.admin)
    with ui.client(ui.admin) as c:
        pages = [
            "/ui/",
            "/ui/ns/default/services",
            "/ui/ns/default/services/hostile",
            "/ui/ns/default/services/hostile?tab=yaml",
            "/ui/ns/default/services/hostile?tab=details",
            "/ui/ns/default/services/hostile?tab=canary",
            "/ui/ns/default/services/hostile?tab=events",
            "/ui/ns/default/services/hostile/delete",
            "/ui/new/yaml?namespace=default&edit=hostile",
        ]
        for path in pages:
            r = c.get(path)
            assert r.status_code == 200, (path, r.text)
            assert_escaped(r.text, shown="delete" not in path and "events" not in path)
            assert_no_inline_code(r.text)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert r.headers["x-content-type-options"] == "nosniff"
        # The YAML tab shows the annotation, escaped, and the edit form round-trips it.
        edit = c.get("/ui/new/yaml?namespace=default&edit=hostile").text
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in edit
        # Values from the query string and the path are escaped as well.
        r = c.get("/ui/ns/default/services", params={"deleted": HOSTILE})
        assert_escaped(r.text)
        r = c.get("/ui/ns/default/services/%3Cscript%3Ex")
        assert r.status_code == 404 and "<script>x" not in r.text


def test_home_is_the_list_page_without_inline_code(ui: Ui):
    with ui.client(ui.admin) as c:
        r = c.get("/")
        assert r.status_code == 200
        assert 'data-load="/ui/"' in r.text
        assert_no_inline_code(r.text)
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        # What that page loads into itself: the list's main part only.
        part = c.get("/ui/", headers={"X-Modelport-Fragment": "1"})
        assert part.status_code == 200 and "<html" not in part.text
        assert 'id="services"' in part.text


def test_anonymous_visitors_are_sent_to_login(ui: Ui):
    r = httpx.get(f"{ui.platform.url}/ui/ns/default/services", headers={"Accept": "text/html"})
    assert r.status_code == 302 and r.headers["location"].startswith("/dex/auth")
    r = httpx.get(f"{ui.platform.url}/ui/", headers={"Accept": "application/json"})
    assert r.status_code == 401


def test_outsider_sees_only_their_namespace(ui: Ui):
    apply(ui, hostile_service("secret-model"), ui.admin)
    apply(ui, hostile_service("own-model", "mallory"), ui.outsider)
    with ui.client(ui.outsider) as c:
        everything = c.get("/ui/").text
        assert "own-model" in everything and "secret-model" not in everything
        assert ">default<" not in everything  # not even in the namespace picker
        for path in (
            "/ui/ns/default/services",
            "/ui/ns/default/services/secret-model",
            "/ui/ns/default/services/secret-model?tab=logs",
            "/ui/ns/default/services/secret-model/delete",
            "/ui/ns/default/services/secret-model/status",
            "/ui/status?namespace=default",
            "/ui/new/yaml?namespace=default&edit=secret-model",
        ):
            r = c.get(path)
            assert r.status_code == 403, (path, r.status_code)
            assert "secret-model" not in r.text.replace(path, "")
        assert c.get("/ui/ns/mallory/services/nope").status_code == 404
        # A valid form of the outsider's own cannot delete in another namespace.
        token = csrf_of(c.get("/ui/ns/mallory/services/own-model/delete").text)
        r = c.post("/ui/ns/default/services/secret-model/delete", data={"csrf": token})
        assert r.status_code == 403
    with ui.client(ui.admin) as c:
        assert c.get("/ui/ns/default/services/secret-model").status_code == 200


def test_state_changes_need_the_csrf_token_and_this_origin(ui: Ui):
    apply(ui, hostile_service("keep-me"), ui.admin)
    target = "/ui/ns/default/services/keep-me/delete"
    with ui.client(ui.admin) as c:
        token = csrf_of(c.get(target).text)
        refused = [
            ({"name": "x"}, {}),
            ({"csrf": "0" * 64}, {}),
            ({"csrf": token}, {"Origin": "http://evil.example"}),
            ({"csrf": token}, {"Sec-Fetch-Site": "same-site"}),
            ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
        ]
        for form, headers in refused:
            r = c.post(target, data=form, headers=headers)
            assert r.status_code == 403, (form, headers, r.status_code)
            assert "not carried out" in r.text or "expired" in r.text
        for path in ("/ui/new", "/ui/new/yaml", "/ui/ns/default/services/keep-me/canary"):
            assert c.post(path, data={"action": "rollback"}).status_code == 403
        assert c.get("/ui/ns/default/services/keep-me").status_code == 200
    # A token is bound to the credential it was made for: another session's is refused.
    session, _ = five_step_login(ui.platform.url, "/ui/", user=ADMIN, password=ADMIN_PASSWORD)
    with httpx.Client(base_url=ui.platform.url, cookies={"authservice_session": session}) as c:
        assert c.post(target, data={"csrf": token}).status_code == 403
        own = csrf_of(c.get(target, headers={"Accept": "text/html"}).text)
        same = {"Origin": ui.platform.url, "Sec-Fetch-Site": "same-origin"}
        r = c.post(target, data={"csrf": own}, headers=same)
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/ns/default/services?deleted=keep-me"
        assert c.get("/ui/ns/default/services/keep-me").status_code == 404


def test_create_form_shows_problems_next_to_their_fields(ui: Ui):
    with ui.client(ui.admin) as c:
        token = csrf_of(c.get("/ui/new").text)
        bad = {
            "csrf": token,
            "name": "Bad_Name",
            "namespace": "default",
            "model_format": "sklearn",
            "storage_uri": "",
            "min_replicas": "-1",
            "max_replicas": "two",
        }
        r = c.post("/ui/new", data=bad)
        assert r.status_code == 422
        # The form's own check (not a number) comes first; then the API's problems.
        assert re.search(r'id="max_replicas-error">[^<]*not a whole number', r.text)
        bad["max_replicas"] = "2"
        r = c.post("/ui/new", data=bad)
        assert r.status_code == 422
        for field in ("name", "storage_uri", "min_replicas"):
            assert f'id="{field}-error"' in r.text, field
            assert f'aria-describedby="{field}-error"' in r.text
        assert 'value="Bad_Name"' in r.text  # what was typed stays
        good = {**bad, "name": "from-form", "storage_uri": "/nowhere/model", "min_replicas": "0"}
        r = c.post("/ui/new", data=good)
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith("/ui/ns/default/services/from-form")
        doc = c.get("/api/v1/namespaces/default/inferenceservices/from-form").json()
        assert doc["spec"]["predictor"]["maxReplicas"] == 2


def test_yaml_with_several_documents(ui: Ui):
    text = hostile_service("yaml-one") + "---\n" + hostile_service("yaml-two")
    with ui.client(ui.admin) as c:
        token = csrf_of(c.get("/ui/new/yaml").text)
        r = c.post("/ui/new/yaml", data={"csrf": token, "yaml": text, "namespace": ""})
        assert r.status_code == 200, r.text
        assert "default/yaml-one" in r.text and "default/yaml-two" in r.text
        r = c.post("/ui/new/yaml", data={"csrf": token, "yaml": "a: [", "namespace": ""})
        assert r.status_code == 422 and "Nothing was applied" in r.text
        broken = text.replace("name: yaml-two", "name: Yaml_Two")
        r = c.post("/ui/new/yaml", data={"csrf": token, "yaml": broken, "namespace": ""})
        assert r.status_code == 422 and "metadata.name" in r.text
        empty = c.post("/ui/new/yaml", data={"csrf": token, "yaml": "  ", "namespace": ""})
        assert empty.status_code == 422 and "Paste one or more" in empty.text


def test_canary_set_promote_and_roll_back(ui: Ui):
    apply(ui, hostile_service("canaried"), ui.admin)
    path = "/ui/ns/default/services/canaried"
    api = "/api/v1/namespaces/default/inferenceservices/canaried"
    with ui.client(ui.admin) as c:
        token = csrf_of(c.get(f"{path}?tab=canary").text)

        def predictor() -> dict:
            return c.get(api).json()["spec"]["predictor"]

        r = c.post(f"{path}/canary", data={"csrf": token, "action": "set", "percent": "30",
                                             "storage_uri": "/nowhere/v2"})  # fmt: skip
        assert r.status_code == 303 and "tab=canary" in r.headers["location"]
        assert predictor()["canaryTrafficPercent"] == 30
        assert predictor()["model"]["storageUri"] == "/nowhere/v2"
        c.post(f"{path}/canary", data={"csrf": token, "action": "rollback"})
        assert predictor()["canaryTrafficPercent"] == 0
        c.post(f"{path}/canary", data={"csrf": token, "action": "promote"})
        assert "canaryTrafficPercent" not in predictor()
        r = c.post(f"{path}/canary", data={"csrf": token, "action": "set", "percent": "500"})
        assert r.status_code == 422 and "between 0 and 100" in r.text
        r = c.post(f"{path}/canary", data={"csrf": token, "action": "set", "percent": "x"})
        assert r.status_code == 422
    # An outsider's own valid token changes nothing in the admin's namespace.
    with ui.client(ui.outsider) as c:
        theirs = csrf_of(c.get("/ui/new").text)
        r = c.post(f"{path}/canary", data={"csrf": theirs, "action": "rollback"})
        assert r.status_code == 403


def test_live_status_stream(ui: Ui):
    apply(ui, hostile_service("streamed"), ui.admin)
    with ui.client(ui.admin) as c:
        with c.stream("GET", "/ui/ns/default/services/streamed/status") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = []
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith("data:"):
                    break
        assert "event: status" in lines
        state = yaml.safe_load(lines[-1].removeprefix("data:"))
        assert state["ready"] in ("True", "False", "Unknown")


def test_forms_are_bounded_and_url_encoded(ui: Ui):
    with ui.client(ui.admin) as c:
        token = csrf_of(c.get("/ui/new/yaml").text)
        big = {"csrf": token, "yaml": "#" * (3 << 20), "namespace": ""}
        r = c.post("/ui/new/yaml", data=big)
        assert r.status_code == 413 and "nothing was done" in r.text
        r = c.post("/ui/new/yaml", files={"yaml": ("a.yaml", b"x")}, data={"csrf": token})
        assert r.status_code == 415
        fields = {f"f{i}": "x" for i in range(100)}
        r = c.post("/ui/new/yaml", data={"csrf": token, **fields})
        assert r.status_code == 400


def test_list_status_stream(ui: Ui):
    apply(ui, hostile_service("listed"), ui.admin)
    with ui.client(ui.admin) as c:
        with c.stream("GET", "/ui/status?namespace=default") as r:
            assert r.status_code == 200
            data = next(line for line in r.iter_lines() if line.startswith("data:"))
        states = yaml.safe_load(data.removeprefix("data:"))
        assert states["default/listed"] in ("True", "False", "Unknown")
    with ui.client(ui.outsider) as c:
        assert c.get("/ui/status?namespace=default").status_code == 403
        with c.stream("GET", "/ui/status") as r:  # everything the outsider sees: none of it
            data = next(line for line in r.iter_lines() if line.startswith("data:"))
        assert not [k for k in yaml.safe_load(data.removeprefix("data:")) if "default/" in k]


def test_yaml_edit_mode_round_trips(ui: Ui):
    apply(ui, hostile_service("edited"), ui.admin)
    with ui.client(ui.admin) as c:
        page = c.get("/ui/new/yaml", params={"namespace": "default", "edit": "edited"}).text
        text = html.unescape(
            page.split('name="yaml"', 1)[1].split(">", 1)[1].split("</textarea>")[0]
        )
        doc = yaml.safe_load(text)
        assert "status" not in doc and "generation" not in doc["metadata"]
        assert doc["metadata"]["annotations"]["note"] == HOSTILE  # unescaped back, exactly
        doc["spec"]["predictor"]["maxReplicas"] = 3
        token = csrf_of(page)
        r = c.post(
            "/ui/new/yaml", data={"csrf": token, "yaml": yaml.safe_dump(doc), "namespace": ""}
        )
        assert r.status_code == 200 and "default/edited</a>: configured" in r.text
        spec = c.get("/api/v1/namespaces/default/inferenceservices/edited").json()["spec"]
        assert spec["predictor"]["maxReplicas"] == 3
