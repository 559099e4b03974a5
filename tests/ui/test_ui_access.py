"""The Access page over real sockets: contributors managed by a namespace's owner only, API
tokens shown once and revocable, "sign out everywhere", each action behind the CSRF check
and the control API's own authorization (control/api_access.py)."""

from __future__ import annotations

import time

import httpx

from tests.conftest import password_grant
from tests.helpers.login import five_step_login
from tests.ui.conftest import OUTSIDER, OUTSIDER_PASSWORD, Ui, csrf_of

BOB = "bob@example.com"
BOB_PASSWORD = "bob-password-123"
HOSTILE = "<script>alert(1)</script>"


def own_namespace(ui: Ui) -> None:
    doc = (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: mine, namespace: mallory}\nspec:\n  predictor:\n"
        "    minReplicas: 0\n    model:\n      modelFormat: {name: sklearn}\n"
        "      storageUri: http://127.0.0.1:9/model.joblib\n"
    )
    r = httpx.post(f"{ui.platform.url}/api/v1/apply", content=doc, headers=ui.outsider)
    assert r.status_code == 200, r.text


def add_bob(ui: Ui) -> dict[str, str]:
    ui.platform.cli(
        "users", "add", BOB, "--password-stdin", "--data-dir", str(ui.platform.data_dir),
        input=BOB_PASSWORD + "\n",
    )  # fmt: skip
    return password_grant(ui.platform.url, BOB, BOB_PASSWORD)


def eventually(check, seconds: float = 10) -> bool:
    """Revocations made elsewhere reach the gateway's 2 s cache of good answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_owner_manages_contributors_and_others_cannot(ui: Ui):
    own_namespace(ui)
    bob = add_bob(ui)
    with ui.client(ui.outsider) as c:
        page = c.get("/ui/access/ns/mallory")
        assert page.status_code == 200 and 'id="contributor-form"' in page.text
        token = csrf_of(page.text)
        r = c.post("/ui/access/ns/mallory/contributors", data={"csrf": token, "email": BOB,
                                                                 "role": "view"})  # fmt: skip
        assert r.status_code == 303
        assert f'data-contributor="{BOB}"' in c.get("/ui/access/ns/mallory").text
        r = c.post("/ui/access/ns/mallory/contributors",
                   data={"csrf": token, "email": "not an email", "role": "view"})  # fmt: skip
        assert r.status_code == 303 and "error=" in r.headers["location"]
        shown = c.get(r.headers["location"]).text
        assert "email must be an email address" in shown
        # Without the token nothing changes.
        r = c.post("/ui/access/ns/mallory/contributors", data={"email": "x@y.z", "role": "edit"})
        assert r.status_code == 403
    with ui.client(bob) as c:
        assert "mine" in c.get("/ui/ns/mallory/services").text  # a viewer sees the services
        page = c.get("/ui/access/ns/mallory")
        assert page.status_code == 200 and 'id="contributor-form"' not in page.text
        token = csrf_of(c.get("/ui/access").text)
        r = c.post("/ui/access/ns/mallory/contributors",
                   data={"csrf": token, "email": "eve@example.com", "role": "edit"})  # fmt: skip
        assert r.status_code == 403 and "Only the owner of mallory" in r.text
        r = c.post(f"/ui/access/ns/mallory/contributors/{BOB}/remove", data={"csrf": token})
        assert r.status_code == 403
    # Someone without a role there learns nothing about the namespace.
    with ui.client(ui.admin) as admin:
        assert admin.get("/ui/access/ns/mallory").status_code == 200  # admins see all
    with ui.client(ui.outsider) as c:
        token = csrf_of(c.get("/ui/access").text)
        r = c.post(f"/ui/access/ns/mallory/contributors/{BOB}/remove", data={"csrf": token})
        assert r.status_code == 303
    with ui.client(bob) as c:
        assert c.get("/ui/ns/mallory/services").status_code == 403
        assert c.get("/ui/access/ns/mallory").status_code == 403
        assert c.get("/ui/access/ns/default").status_code == 403


def test_api_tokens_are_shown_once_and_can_be_revoked(ui: Ui):
    own_namespace(ui)
    with ui.client(ui.outsider) as c:
        token = csrf_of(c.get("/ui/access").text)
        form = {"csrf": token, "namespace": "mallory", "role": "view", "ttl": "86400",
                "description": HOSTILE}  # fmt: skip
        r = c.post("/ui/access/tokens", data=form)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert HOSTILE not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
        value = r.text.split('id="token-value"', 1)[1].split(">", 1)[1].split("<", 1)[0]
        assert value.startswith("mpt_")
        # Once: the list afterwards names the token but never holds its secret.
        again = c.get("/ui/access").text
        token_id = value.removeprefix("mpt_").split("_")[0]
        assert f'data-token="{token_id}"' in again and value not in again
        # No more than the creator holds: nothing in a namespace of someone else.
        r = c.post("/ui/access/tokens", data={**form, "namespace": "default"})
        assert r.status_code == 403
    with httpx.Client(base_url=ui.platform.url, headers={"Authorization": f"Bearer {value}"}) as t:
        assert t.get("/api/v1/namespaces/mallory/inferenceservices").status_code == 200
        # A token manages no access itself.
        assert t.get("/api/v1/tokens").status_code == 403
        assert (
            t.post("/api/v1/tokens", json={"namespace": "mallory", "role": "view"}).status_code
            == 403
        )
        with ui.client(ui.outsider) as c:
            token = csrf_of(c.get("/ui/access").text)
            r = c.post(f"/ui/access/tokens/{token_id}/revoke", data={"csrf": token})
            assert r.status_code == 303
            assert "revoked" in c.get("/ui/access").text
        assert eventually(
            lambda: t.get("/api/v1/namespaces/mallory/inferenceservices").status_code == 401
        )
    # Someone else's token is not theirs to revoke.
    with ui.client(ui.admin) as c:
        token = csrf_of(c.get("/ui/access").text)
        r = c.post(f"/ui/access/tokens/{token_id}/revoke", data={"csrf": token})
        assert r.status_code == 404


def test_sign_out_everywhere_ends_every_session(ui: Ui):
    url = ui.platform.url
    first, _ = five_step_login(url, "/ui/", user=OUTSIDER, password=OUTSIDER_PASSWORD)
    second, _ = five_step_login(url, "/ui/", user=OUTSIDER, password=OUTSIDER_PASSWORD)
    bearer = password_grant(url, OUTSIDER, OUTSIDER_PASSWORD)
    html = {"Accept": "text/html"}
    with httpx.Client(base_url=url, cookies={"authservice_session": first}, headers=html) as c:
        token = csrf_of(c.get("/ui/access").text)
        r = c.post("/ui/access/sign-out-everywhere", data={"csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert c.get("/ui/access").status_code == 302  # asked to log in again
    with httpx.Client(base_url=url, cookies={"authservice_session": second}, headers=html) as c:
        assert c.get("/ui/access").status_code == 302
    assert httpx.get(f"{url}/api/v1/tokens", headers=bearer).status_code == 401
    # Logging in afterwards works (the cut-off is the moment of the click).
    time.sleep(1.1)
    again, _ = five_step_login(url, "/ui/", user=OUTSIDER, password=OUTSIDER_PASSWORD)
    with httpx.Client(base_url=url, cookies={"authservice_session": again}, headers=html) as c:
        assert c.get("/ui/access").status_code == 200
