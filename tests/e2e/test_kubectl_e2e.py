"""The real ``kubectl`` against a real ``modelport up``, through the kubeconfig ``modelport
kubeconfig`` writes (HTTPS endpoint, the platform's CA, the exec credential plugin): apply,
get in each output, get -A, apply again, describe, edit, wait, watch, delete, explain, the
runtime kinds, and another user's Forbidden."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import PlatformProcess, isvc_yaml

HEADER = "NAME URL READY PREV LATEST PREVROLLEDOUTREVISION LATESTREADYREVISION AGE".split()


def _kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        # The machines these tests run on have kubectl; a fresh one gets Debian's, if any.
        subprocess.run(["apt-get", "install", "-y", "kubectl"], capture_output=True, timeout=600)
        found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed and could not be installed")
    return found


@dataclass
class Kubectl:
    """kubectl with a kubeconfig of its own, as one user of the platform."""

    binary: str
    env: dict[str, str]

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            input=input,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done


def kubectl_for(platform: PlatformProcess, cli_env: dict[str, str], home: Path) -> Kubectl:
    """Write the kubeconfig with `modelport kubeconfig` in the user's CLI environment."""
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "kubeconfig"],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    home.mkdir(parents=True, exist_ok=True)
    (home / "kubeconfig").write_text(done.stdout)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # kubectl's discovery cache goes under it
        "KUBECONFIG": str(home / "kubeconfig"),
    }
    return Kubectl(_kubectl_binary(), env)


@pytest.fixture(scope="module")
def kubectl(platform: PlatformProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return kubectl_for(platform, platform.env, tmp_path_factory.mktemp("admin-home"))


def _yaml_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"obj-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return str(path)


def test_kubeconfig_points_kubectl_at_https_with_the_platforms_ca(kubectl: Kubectl):
    config = yaml.safe_load(Path(kubectl.env["KUBECONFIG"]).read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"].startswith("https://") and cluster["server"].endswith("/k8s")
    assert cluster["certificate-authority-data"]
    version = kubectl("version", "-o", "json")
    assert json.loads(version.stdout)["serverVersion"]["major"] == "1"


def test_the_kubectl_workflow(kubectl: Kubectl, iris_dir: Path, tmp_path: Path):
    manifest = _yaml_file(tmp_path, isvc_yaml("kc-iris", f"file://{iris_dir}"))
    assert (
        "inferenceservice.serving.kserve.io/kc-iris created"
        in kubectl("apply", "-f", manifest).stdout
    )
    waited = kubectl("wait", "--for=condition=Ready", "isvc/kc-iris", "--timeout=90s")
    assert "condition met" in waited.stdout

    table = kubectl("get", "isvc").stdout.splitlines()
    assert table[0].split() == HEADER
    row = next(line.split() for line in table[1:] if line.startswith("kc-iris "))
    assert row[1] == "http://kc-iris.default.example.com" and row[2] == "True"
    assert "kc-iris-predictor-00001" in row

    obj = yaml.safe_load(kubectl("get", "isvc", "kc-iris", "-o", "yaml").stdout)
    assert obj["kind"] == "InferenceService"
    meta = obj["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["generation"] == 1
    assert "kubectl.kubernetes.io/last-applied-configuration" in meta["annotations"]
    assert json.loads(kubectl("get", "isvc", "kc-iris", "-o", "json").stdout)["spec"] == obj["spec"]
    url = kubectl("get", "isvc", "kc-iris", "-o", "jsonpath={.status.url}").stdout
    assert url == "http://kc-iris.default.example.com"
    everywhere = kubectl("get", "isvc", "-A").stdout.splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == ["default", "kc-iris"] for line in everywhere[1:])

    assert "kc-iris unchanged" in kubectl("apply", "-f", manifest).stdout
    assert kubectl("diff", "-f", manifest).returncode == 0  # server-side dry run: no change
    Path(manifest).write_text(
        Path(manifest)
        .read_text()
        .replace("  name: kc-iris\n", "  name: kc-iris\n  labels:\n    team: a\n")
    )
    differs = kubectl("diff", "-f", manifest, check=False)
    assert differs.returncode == 1 and "+    team: a" in differs.stdout
    assert (
        "configured (server dry run)" in kubectl("apply", "--dry-run=server", "-f", manifest).stdout
    )
    assert kubectl("get", "isvc", "-l", "team=a", "-o", "name").stdout == ""
    assert "kc-iris configured" in kubectl("apply", "-f", manifest).stdout
    assert kubectl("get", "isvc", "-l", "team=a", "-o", "name").stdout.strip() == (
        "inferenceservice.serving.kserve.io/kc-iris"
    )

    described = kubectl("describe", "isvc", "kc-iris").stdout
    for expected in (
        "Name:         kc-iris",
        "Namespace:    default",
        "Labels:       team=a",
        "Status:",
        "Ready",
    ):
        assert expected in described, described

    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/team: a/team: edited/' \"$1\"\n")
    editor.chmod(0o755)
    edited = kubectl("edit", "isvc", "kc-iris", KUBE_EDITOR=str(editor))
    assert "kc-iris edited" in edited.stdout
    label = kubectl("get", "isvc", "kc-iris", "-o", "jsonpath={.metadata.labels.team}").stdout
    assert label == "edited"

    patched = kubectl(
        "patch", "isvc", "kc-iris", "--type", "merge", "-p", '{"metadata":{"labels":{"team":"p"}}}'
    )
    assert "kc-iris patched" in patched.stdout

    assert (
        'inferenceservice.serving.kserve.io "kc-iris" deleted'
        in kubectl("delete", "isvc", "kc-iris").stdout
    )
    missing = kubectl("get", "isvc", "kc-iris", check=False)
    assert missing.returncode == 1
    assert (
        'Error from server (NotFound): inferenceservices.serving.kserve.io "kc-iris" not found'
        in missing.stderr
    )


def test_invalid_manifests_name_the_field(kubectl: Kubectl, tmp_path: Path):
    bad = isvc_yaml("kc-bad", "s3://bucket/model", minReplicas='"two"')
    done = kubectl("apply", "-f", _yaml_file(tmp_path, bad), check=False)
    assert done.returncode == 1
    assert 'The InferenceService "kc-bad" is invalid' in done.stderr
    assert "spec.predictor.minReplicas" in done.stderr


def test_get_watch_shows_the_rollout(kubectl: Kubectl, iris_dir: Path, tmp_path: Path):
    watcher = subprocess.Popen(
        [kubectl.binary, "get", "isvc", "--watch", "--request-timeout=60s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=kubectl.env,
    )
    try:
        time.sleep(1.5)  # the list is printed and the watch is open
        kubectl("apply", "-f", _yaml_file(tmp_path, isvc_yaml("kc-watch", f"file://{iris_dir}")))
        kubectl("wait", "--for=condition=Ready", "isvc/kc-watch", "--timeout=90s")
        kubectl("delete", "isvc", "kc-watch")
        time.sleep(1.5)
    finally:
        watcher.terminate()
        output, _ = watcher.communicate(timeout=30)
    rows = [line.split() for line in output.splitlines() if line.startswith("kc-watch ")]
    assert rows, output
    assert rows[0][1] in ("Unknown", "False") or rows[0][2] in ("Unknown", "False"), output
    assert any("True" in row for row in rows), output


@pytest.fixture(scope="module")
def constant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second sklearn model (always class 2), so the revisions differ."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier

    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("constant")
    joblib.dump(DummyClassifier(strategy="constant", constant=2).fit(x, y), path / "model.joblib")
    return path


def test_wait_after_an_update_waits_for_the_new_revision(
    kubectl: Kubectl, iris_dir: Path, constant_dir: Path, tmp_path: Path
):
    first = _yaml_file(tmp_path, isvc_yaml("kc-roll", f"file://{iris_dir}"))
    kubectl("apply", "-f", first)
    kubectl("wait", "--for=condition=Ready", "isvc/kc-roll", "--timeout=90s")
    canary = isvc_yaml("kc-roll", f"file://{constant_dir}", canaryTrafficPercent=30)
    kubectl("apply", "-f", _yaml_file(tmp_path, canary))
    # Right after the update: Ready must mean the new revision, as on KServe.
    kubectl("wait", "--for=condition=Ready", "isvc/kc-roll", "--timeout=90s")
    path = "{.status.components.predictor.latestReadyRevision}"
    assert kubectl("get", "isvc", "kc-roll", "-o", f"jsonpath={path}").stdout == (
        "kc-roll-predictor-00002"
    )
    table = kubectl("get", "isvc", "kc-roll").stdout.splitlines()
    row = dict(zip(table[0].split(), table[1].split(), strict=False))
    assert row["PREV"] == "70" and row["LATEST"] == "30", table
    assert row["PREVROLLEDOUTREVISION"] == "kc-roll-predictor-00001", table
    assert row["LATESTREADYREVISION"] == "kc-roll-predictor-00002", table
    kubectl("delete", "isvc", "kc-roll")


def test_explain_uses_the_openapi_schema(kubectl: Kubectl):
    explained = kubectl("explain", "isvc.spec.predictor").stdout
    assert "KIND:       InferenceService" in explained
    for field in ("minReplicas", "model", "canaryTrafficPercent", "sklearn"):
        assert field in explained


def test_runtime_kinds_and_namespaces(kubectl: Kubectl, tmp_path: Path):
    runtime = (
        "apiVersion: serving.kserve.io/v1alpha1\n"
        "kind: ServingRuntime\n"
        "metadata:\n  name: kc-runtime\n"
        "spec:\n  supportedModelFormats:\n  - name: sklearn\n    version: '1'\n"
        "  containers:\n  - name: kserve-container\n    image: kserve/sklearnserver\n"
    )
    manifest = _yaml_file(tmp_path, runtime)
    assert (
        "servingruntime.serving.kserve.io/kc-runtime created"
        in kubectl("apply", "-f", manifest).stdout
    )
    listed = kubectl("get", "servingruntimes").stdout.splitlines()
    assert listed[0].split() == ["NAME", "DISABLED", "MODELTYPE", "CONTAINERS", "AGE"]
    assert any(line.startswith("kc-runtime ") for line in listed)
    assert "kserve-sklearnserver" in kubectl("get", "clusterservingruntimes").stdout
    assert '"kc-runtime" deleted' in kubectl("delete", "-f", manifest).stdout
    namespaces = kubectl("get", "namespaces").stdout
    assert "default" in namespaces and "Active" in namespaces
    assert "namespace/kc-made created" in kubectl("create", "namespace", "kc-made").stdout
    assert "kc-made" in kubectl("get", "ns", "-o", "name").stdout
    # A manifest with its namespace, applied twice, as projects keep them.
    both = _yaml_file(
        tmp_path,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kc-demo\n---\n"
        + isvc_yaml("kc-demo-isvc", "s3://bucket/model", namespace="kc-demo"),
    )
    first = kubectl("apply", "-f", both).stdout
    assert "namespace/kc-demo created" in first and "kc-demo-isvc created" in first
    assert "kc-demo-isvc unchanged" in kubectl("apply", "-f", both).stdout
    kubectl("delete", "isvc", "kc-demo-isvc", "-n", "kc-demo")


@pytest.fixture(scope="module")
def other_user(
    platform: PlatformProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kubectl]:
    email, password = "kc-other@example.com", "kc-other-pw-123"
    platform.cli(
        "users",
        "add",
        email,
        "--password-stdin",
        "--data-dir",
        str(platform.data_dir),
        input=password + "\n",
    )
    home = tmp_path_factory.mktemp("other-home")
    env = {**platform.env, "MODELPORT_CONFIG_DIR": str(home / "config")}
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "login", "-u", email, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    yield kubectl_for(platform, env, home)


def test_another_user_is_forbidden(kubectl: Kubectl, other_user: Kubectl, tmp_path: Path):
    manifest = _yaml_file(tmp_path, isvc_yaml("kc-private", "s3://bucket/model"))
    kubectl("apply", "-f", manifest)
    try:
        for args in (
            ("get", "isvc", "kc-private"),
            ("delete", "isvc", "kc-private"),
            ("get", "isvc"),
        ):
            done = other_user(*args, check=False)
            assert done.returncode == 1
            assert "Error from server (Forbidden)" in done.stderr, done.stderr
            assert 'User "kc-other@example.com" cannot' in done.stderr
        # -A lists only the namespaces the user may read: none of the admin's.
        assert "kc-private" not in other_user("get", "isvc", "-A").stdout
    finally:
        kubectl("delete", "-f", manifest)
