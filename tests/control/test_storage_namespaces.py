"""Tenants' model files are kept per namespace: a fetch for one namespace is never handed, and
never shares, a cache entry or a volume of another; and nothing in the cache is readable by
other users of the machine. Real HTTP server (with ETags) and moto's S3 server."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from modelport.control.storage import Storage, StorageError
from tests.s3server import S3Server


@dataclass
class Files:
    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    gets: list[str] = field(default_factory=list)


@pytest.fixture
def http_files() -> Iterator[Files]:
    state = Files()

    class Handler(BaseHTTPRequestHandler):
        def respond(self, body: bool) -> None:
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            if body:
                state.gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", '"' + hashlib.md5(data).hexdigest() + '"')
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self.respond(body=True)

        def do_HEAD(self) -> None:
            self.respond(body=False)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that hides nothing, so modes are what storage chose, not what the umask left."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "cache", tmp_path / "volumes", env={})


def tar_gz(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def assert_private(root: Path) -> None:
    """Every directory 0700, every file 0600 (0700 if executable), from root down."""
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        if path.is_dir():
            assert mode == 0o700, path
        else:
            assert mode in (0o600, 0o700), (path, oct(mode))


# ---- remote downloads ----------------------------------------------------------------------


def test_http_same_uri_is_downloaded_and_kept_per_namespace(
    storage: Storage, http_files: Files, tmp_path: Path
) -> None:
    http_files.files["/model.joblib"] = b"weights"
    uri = f"{http_files.url}/model.joblib"
    cache = tmp_path / "cache"

    team_a = storage.fetch(uri, namespace="team-a")
    team_b = storage.fetch(uri, namespace="team-b")

    assert team_a.is_relative_to(cache / "team-a")
    assert team_b.is_relative_to(cache / "team-b")
    # Not handed the other's entry, even of the same URI and ETag: each downloads its own.
    assert http_files.gets == ["/model.joblib", "/model.joblib"]
    assert (team_a / "model.joblib").read_bytes() == (team_b / "model.joblib").read_bytes()
    assert os.stat(team_a / "model.joblib").st_ino != os.stat(team_b / "model.joblib").st_ino
    # Each namespace's own cache still hits.
    assert storage.fetch(uri, namespace="team-a") == team_a
    assert len(http_files.gets) == 2
    # Without a namespace: today's layout, apart from both.
    plain = storage.fetch(uri)
    assert plain.parent.parent == cache and len(http_files.gets) == 3


def test_s3_prefix_is_kept_per_namespace_and_private(
    tmp_path: Path, s3_server: S3Server, open_umask: None
) -> None:
    client = boto3.client("s3", **s3_server.client_kwargs())
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="iris/model.joblib", Body=b"m")
    client.put_object(Bucket=bucket, Key="iris/sub/extra.json", Body=b"{}")
    storage = Storage(tmp_path / "cache", tmp_path / "volumes", env=s3_server.env())

    team_a = storage.fetch(f"s3://{bucket}/iris", namespace="team-a")
    team_b = storage.fetch(f"s3://{bucket}/iris", namespace="team-b")

    assert team_a.is_relative_to(tmp_path / "cache" / "team-a")
    assert team_b.is_relative_to(tmp_path / "cache" / "team-b")
    assert (team_b / "sub" / "extra.json").read_bytes() == b"{}"
    assert_private(tmp_path / "cache")


def test_local_archive_is_unpacked_per_namespace_and_private(
    storage: Storage, tmp_path: Path, open_umask: None
) -> None:
    archive = tmp_path / "src" / "model.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(tar_gz({"model.joblib": (b"m", 0o644), "bin/run": (b"#!/bin/sh\n", 0o755)}))

    team_a = storage.fetch(str(archive), namespace="team-a")
    team_b = storage.fetch(f"file://{archive}", namespace="team-b")

    assert team_a.is_relative_to(tmp_path / "cache" / "team-a")
    assert team_b.is_relative_to(tmp_path / "cache" / "team-b")
    assert (team_b / "model.joblib").read_bytes() == b"m"
    assert stat.S_IMODE((team_a / "bin" / "run").stat().st_mode) == 0o700
    assert stat.S_IMODE((team_a / "model.joblib").stat().st_mode) == 0o600
    assert_private(tmp_path / "cache")


def test_http_download_without_namespace_is_private_too(
    storage: Storage, http_files: Files, tmp_path: Path, open_umask: None
) -> None:
    http_files.files["/model.joblib"] = b"weights"
    path = storage.fetch(f"{http_files.url}/model.joblib")
    assert stat.S_IMODE((path / "model.joblib").stat().st_mode) == 0o600
    assert_private(tmp_path / "cache")


def test_existing_cache_dir_is_made_private(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    os.chmod(cache, 0o755)  # as an older version left it
    Storage(cache, tmp_path / "volumes", env={})
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


# ---- local paths and volumes ---------------------------------------------------------------


def test_pvc_maps_into_the_namespaces_own_volumes(storage: Storage, tmp_path: Path) -> None:
    volumes = tmp_path / "volumes"
    mine = volumes / "team-a" / "claim" / "models" / "iris"
    mine.mkdir(parents=True)
    (volumes / "claim" / "models" / "iris").mkdir(parents=True)

    assert storage.fetch("pvc://claim/models/iris", namespace="team-a") == mine.resolve()
    # team-b has no claim of that name: team-a's is not visible to it.
    with pytest.raises(StorageError, match="does not exist"):
        storage.fetch("pvc://claim/models/iris", namespace="team-b")
    # Without a namespace, today's layout.
    assert storage.fetch("pvc://claim/models/iris") == (volumes / "claim/models/iris").resolve()


def test_pvc_link_into_another_namespaces_volume_is_refused(
    storage: Storage, tmp_path: Path
) -> None:
    volumes = tmp_path / "volumes"
    (volumes / "team-b" / "claim" / "secret").mkdir(parents=True)
    (volumes / "team-a" / "claim").mkdir(parents=True)
    (volumes / "team-a" / "claim" / "peek").symlink_to(volumes / "team-b" / "claim" / "secret")
    with pytest.raises(StorageError, match="outside volume 'claim'"):
        storage.fetch("pvc://claim/peek", namespace="team-a")


def test_local_path_into_another_namespaces_cache_or_volume_is_refused(
    storage: Storage, http_files: Files, tmp_path: Path
) -> None:
    http_files.files["/model.joblib"] = b"weights"
    theirs = storage.fetch(f"{http_files.url}/model.joblib", namespace="team-b")
    shared = storage.fetch(f"{http_files.url}/model.joblib")
    (tmp_path / "volumes" / "team-b" / "claim").mkdir(parents=True)

    for uri in (
        str(theirs),
        f"file://{theirs}/model.joblib",
        str(shared),
        str(tmp_path / "cache"),
        str(tmp_path / "volumes" / "team-b" / "claim"),
    ):
        with pytest.raises(StorageError, match="outside namespace 'team-a'"):
            storage.fetch(uri, namespace="team-a")
    # Its own entries, and paths elsewhere, are still usable.
    assert storage.fetch(str(theirs), namespace="team-b") == theirs
    (tmp_path / "models").mkdir()
    assert storage.fetch(str(tmp_path / "models"), namespace="team-a") == tmp_path / "models"


@pytest.mark.parametrize(
    "namespace", ["", "Team-A", "a/b", "..", ".tmp", "-a", "a-", "a_b", "a" * 64, "a\n"]
)
def test_namespace_must_be_a_dns_label(storage: Storage, tmp_path: Path, namespace: str) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(StorageError, match="is not a DNS label"):
        storage.fetch(str(tmp_path / "m"), namespace=namespace)
