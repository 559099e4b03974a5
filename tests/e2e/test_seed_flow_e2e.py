"""The seed's documented curl flow on `modelport up` with no configuration at all: Kubeflow's
Dex config skips the approval screen, so /dex/approval answers 303 and the flow ends with
an `authservice_session` cookie (issue 10, bug 1)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import ADMIN, ADMIN_PASSWORD, isvc_yaml, start_platform, wait_ready
from tests.gateway.test_gateway_e2e import INFER, five_step_login, raw_client


def test_the_seed_flow_twice_on_the_defaults(tmp_path: Path, iris_dir: Path):
    platform = start_platform(tmp_path / "data", tmp_path / "config")
    try:
        platform.cli("apply", "-f", "-", input=isvc_yaml("sklearn-iris", str(iris_dir)))
        wait_ready(platform, "sklearn-iris")
        target = "/serving/default/sklearn-iris/v2/models/sklearn-iris"
        sessions = []
        for _ in range(2):  # a second login the same day works too
            value, final = five_step_login(platform, target, user=ADMIN, password=ADMIN_PASSWORD)
            cookie = next(
                h for h in final.headers.get_list("set-cookie")
                if h.startswith("authservice_session=")
            )  # fmt: skip
            assert "Max-Age=86400" in cookie and "Path=/" in cookie
            sessions.append(value)
        assert sessions[0] != sessions[1]
        with raw_client(platform) as c:
            for value in sessions:  # both sessions stay valid, again and again
                for _ in range(3):
                    r = c.post(
                        f"{target}/infer",
                        json=INFER,
                        headers={"Cookie": f"authservice_session={value}"},
                    )
                    assert r.status_code == 200, r.text
                    assert r.json()["outputs"][0]["data"] == [1]
    finally:
        platform.stop()
