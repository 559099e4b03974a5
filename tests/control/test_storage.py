"""Storage initializer: local, pvc, http(s) against a real HTTP server, s3 against moto."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import stat
import tarfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from modelport.control.storage import (
    S3Settings,
    Storage,
    StorageError,
    check_uri,
    unpack,
)
from tests.s3server import S3Server, start_s3_server

# ---- helpers ---------------------------------------------------------------------------------


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def reg(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def zip_bytes(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A zip whose symlinks come first, so later entries can try to write through them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # S_IFLNK, as Info-ZIP stores symlinks
            zf.writestr(info, target)
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def cache_entries(cache: Path) -> list[Path]:
    """Installed cache entries (cache/<uri>/<version>), ignoring the staging area."""
    return [p for p in cache.glob("*/*") if not p.parent.name.startswith(".")]


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "cache", tmp_path / "pvc", env={})


# ---- a real HTTP server with ETags -----------------------------------------------------------


@dataclass
class FileServer:
    """Serves ``files`` by path; records every request so tests can count downloads."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    etag: bool = True
    last_modified: str | None = None
    delay_s: float = 0.0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p == path)


@pytest.fixture
def http_files() -> Iterator[FileServer]:
    state = FileServer()

    class Handler(BaseHTTPRequestHandler):
        def _respond(self, body: bool) -> None:
            path = self.path.split("?")[0]
            state.requests.append((self.command, path, dict(self.headers)))
            if path in state.status:
                self.send_error(state.status[path])
                return
            data = state.files.get(path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            if state.etag:
                self.send_header("ETag", '"' + hashlib.md5(data).hexdigest() + '"')
            if state.last_modified:
                self.send_header("Last-Modified", state.last_modified)
            self.end_headers()
            if body:
                time.sleep(state.delay_s)
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._respond(body=True)

        def do_HEAD(self) -> None:
            self._respond(body=False)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# ---- S3 --------------------------------------------------------------------------------------


@pytest.fixture
def bucket(s3_server: S3Server) -> tuple[str, Any]:
    """A fresh bucket on the shared moto server and a boto3 client for it."""
    client = boto3.client("s3", **s3_server.client_kwargs())
    name = f"t-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return name, client


@pytest.fixture
def s3_storage(tmp_path: Path, s3_server: S3Server) -> Storage:
    return Storage(tmp_path / "cache", tmp_path / "pvc", env=s3_server.env())


# ---- check_uri -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "/models/iris",
        "relative/model.joblib",
        "file:///models/iris",
        "pvc://claim/models/iris",
        "pvc://claim",
        "https://example.com/models/model.joblib?X-Amz-Signature=abc",
        "http://example.com:8080/model.tar.gz",
        "s3://bucket",
        "s3://bucket/prefix/",
        "gs://bucket/model",
    ],
)
def test_check_uri_accepts_supported_uris(uri: str) -> None:
    assert check_uri(uri) is None


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("", "empty"),
        ("ftp://host/model.bin", "scheme 'ftp' is not supported"),
        ("hf://org/model", "scheme 'hf' is not supported"),
        ("s3://", "no bucket"),
        ("gs:///key", "no bucket"),
        ("https://example.com/", "must name a file"),
        ("https:///model.bin", "no host"),
        ("pvc://claim/../other/x", "'..'"),
        ("pvc:///x", "claim name"),
        ("file://", "no path"),
    ],
)
def test_check_uri_explains_unusable_uris(uri: str, fragment: str) -> None:
    reason = check_uri(uri)
    assert reason is not None and fragment in reason


def test_unsupported_scheme_message_lists_the_supported_ones(storage: Storage) -> None:
    with pytest.raises(StorageError) as err:
        storage.fetch("ftp://host/model.bin")
    assert str(err.value) == (
        "storage URI scheme 'ftp' is not supported "
        "(use a local path, file://, http(s)://, s3://, gs:// or pvc://)"
    )


def test_check_uri_hides_presigned_query_in_messages() -> None:
    reason = check_uri("https://example.com/?X-Amz-Signature=SECRET")
    assert reason is not None and "SECRET" not in reason


# ---- local, file://, pvc:// ------------------------------------------------------------------


def test_local_paths_are_returned_resolved_and_not_copied(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "models" / "iris"
    model_dir.mkdir(parents=True)
    (model_dir / "model.joblib").write_bytes(b"m")
    monkeypatch.chdir(tmp_path)

    assert storage.fetch(str(model_dir)) == model_dir.resolve()
    assert storage.fetch("models/iris") == model_dir.resolve()
    assert storage.fetch(f"file://{model_dir}/model.joblib") == model_dir / "model.joblib"
    assert storage.fetch("file://models/iris") == model_dir.resolve()
    assert cache_entries(tmp_path / "cache") == []


@pytest.mark.parametrize("uri", ["/nonexistent/model", "file:///nonexistent/model"])
def test_missing_local_path_is_a_storage_error(storage: Storage, uri: str) -> None:
    with pytest.raises(StorageError, match="/nonexistent/model does not exist"):
        storage.fetch(uri)


def test_pvc_uri_maps_under_pvc_root(storage: Storage, tmp_path: Path) -> None:
    target = tmp_path / "pvc" / "claim" / "models" / "iris"
    target.mkdir(parents=True)
    assert storage.fetch("pvc://claim/models/iris") == target.resolve()
    assert storage.fetch("pvc://claim") == (tmp_path / "pvc" / "claim").resolve()
    with pytest.raises(StorageError, match="does not exist"):
        storage.fetch("pvc://claim/models/missing")


def test_pvc_uri_cannot_escape_its_volume(storage: Storage, tmp_path: Path) -> None:
    claim = tmp_path / "pvc" / "claim"
    claim.mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (claim / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(StorageError, match="'..'"):
        storage.fetch("pvc://claim/../../secret")
    with pytest.raises(StorageError, match="outside volume 'claim'"):
        storage.fetch("pvc://claim/leak")


def test_local_archive_is_unpacked_into_the_cache_not_in_place(
    storage: Storage, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    archive = src / "model.tar.gz"
    archive.write_bytes(tar_bytes([reg("model.joblib", b"v1")]))

    first = storage.fetch(str(archive))
    assert first.is_relative_to(tmp_path / "cache")
    assert tree(first) == {"model.joblib": b"v1"}
    assert sorted(p.name for p in src.iterdir()) == ["model.tar.gz"]  # untouched
    assert storage.fetch(f"file://{archive}") == first

    archive.write_bytes(tar_bytes([reg("model.joblib", b"version-2")]))
    second = storage.fetch(str(archive))
    assert second != first
    assert tree(second) == {"model.joblib": b"version-2"}


# ---- http(s) ---------------------------------------------------------------------------------


def test_http_file_is_downloaded_into_a_directory_with_progress(
    storage: Storage, http_files: FileServer
) -> None:
    data = os.urandom(3 * 2**20 + 17)
    http_files.files["/models/model.joblib"] = data
    calls: list[tuple[int, int | None]] = []

    path = storage.fetch(f"{http_files.url}/models/model.joblib", lambda d, t: calls.append((d, t)))

    assert path.is_dir()  # one file, still a directory: the model server takes directories
    assert tree(path) == {"model.joblib": data}
    assert calls[-1] == (len(data), len(data))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_http_cache_hit_does_no_second_download(storage: Storage, http_files: FileServer) -> None:
    http_files.files["/model.joblib"] = b"v1"
    uri = f"{http_files.url}/model.joblib"

    first = storage.fetch(uri)
    second = storage.fetch(uri)

    assert second == first
    assert http_files.count("GET", "/model.joblib") == 1
    assert http_files.count("HEAD", "/model.joblib") == 2


def test_http_changed_etag_downloads_again_into_a_new_entry(
    storage: Storage, http_files: FileServer
) -> None:
    uri = f"{http_files.url}/model.joblib"
    http_files.files["/model.joblib"] = b"v1"
    first = storage.fetch(uri)
    http_files.files["/model.joblib"] = b"v2"
    second = storage.fetch(uri)

    assert second != first
    assert tree(first) == {"model.joblib": b"v1"}  # a running revision keeps its files
    assert tree(second) == {"model.joblib": b"v2"}
    assert http_files.count("GET", "/model.joblib") == 2


def test_http_last_modified_is_a_version_too(storage: Storage, http_files: FileServer) -> None:
    http_files.etag = False
    http_files.last_modified = "Wed, 21 Oct 2015 07:28:00 GMT"
    http_files.files["/model.joblib"] = b"v1"
    uri = f"{http_files.url}/model.joblib"
    assert storage.fetch(uri) == storage.fetch(uri)
    assert http_files.count("GET", "/model.joblib") == 1


def test_http_without_validators_always_downloads(
    storage: Storage, http_files: FileServer, tmp_path: Path
) -> None:
    http_files.etag = False
    uri = f"{http_files.url}/model.joblib"
    http_files.files["/model.joblib"] = b"v1"
    first = storage.fetch(uri)
    http_files.files["/model.joblib"] = b"v2"
    second = storage.fetch(uri)

    assert http_files.count("GET", "/model.joblib") == 2
    assert second == first  # the one unversioned entry is replaced
    assert tree(second) == {"model.joblib": b"v2"}
    assert len(cache_entries(tmp_path / "cache")) == 1


@pytest.mark.parametrize(
    ("status", "text"), [(404, "404 Not Found"), (403, "403 Forbidden"), (500, "500")]
)
def test_http_errors_name_the_status_and_uri(
    storage: Storage, http_files: FileServer, tmp_path: Path, status: int, text: str
) -> None:
    http_files.files["/model.joblib"] = b"x"
    http_files.status["/model.joblib"] = status
    uri = f"{http_files.url}/model.joblib"
    with pytest.raises(StorageError) as err:
        storage.fetch(f"{uri}?X-Amz-Signature=TOPSECRET")
    assert str(err.value).startswith(f"storage download failed: {text}")
    assert str(err.value).endswith(f"from {uri}")
    assert "TOPSECRET" not in str(err.value)
    assert cache_entries(tmp_path / "cache") == []
    assert list((tmp_path / "cache" / ".tmp").iterdir()) == []


def test_http_unreachable_host_is_a_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError, match=r"cannot reach http://127\.0\.0\.1:1/model\.joblib"):
        storage.fetch("http://127.0.0.1:1/model.joblib")


def test_http_archive_is_unpacked_and_removed(storage: Storage, http_files: FileServer) -> None:
    http_files.files["/m/model.zip"] = zip_bytes(
        {"iris/model.joblib": b"m", "iris/meta.json": b"{}"}
    )
    path = storage.fetch(f"{http_files.url}/m/model.zip")
    assert tree(path) == {"iris/meta.json": b"{}", "iris/model.joblib": b"m"}


def test_http_headers_come_from_kserve_host_variable(
    tmp_path: Path, http_files: FileServer
) -> None:
    env = {"127.0.0.1-headers": json.dumps({"Authorization": "Bearer abc"})}
    storage = Storage(tmp_path / "cache", tmp_path / "pvc", env=env)
    http_files.files["/model.joblib"] = b"m"
    storage.fetch(f"{http_files.url}/model.joblib")
    gets = [h for m, _, h in http_files.requests if m == "GET"]
    assert gets[0].get("Authorization") == "Bearer abc"


def test_concurrent_fetches_of_one_uri_download_once(
    storage: Storage, http_files: FileServer
) -> None:
    data = os.urandom(2**20)
    http_files.files["/model.joblib"] = data
    http_files.delay_s = 0.3
    uri = f"{http_files.url}/model.joblib"
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(storage.fetch(uri))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(set(results)) == 1
    assert tree(results[0]) == {"model.joblib": data}
    assert http_files.count("GET", "/model.joblib") == 1


def test_concurrent_fetches_of_different_uris_do_not_wait_for_each_other(
    storage: Storage, http_files: FileServer
) -> None:
    http_files.delay_s = 1.0
    for i in range(4):
        http_files.files[f"/m{i}.bin"] = b"x"
    threads = [
        threading.Thread(target=storage.fetch, args=(f"{http_files.url}/m{i}.bin",))
        for i in range(4)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 3.0  # one after the other would take 4 s


# ---- archives --------------------------------------------------------------------------------


def test_tar_with_directories_and_inner_links_unpacks(tmp_path: Path) -> None:
    root = tarfile.TarInfo(".")
    root.type = tarfile.DIRTYPE
    archive = tmp_path / "model.tgz"
    archive.write_bytes(
        tar_bytes(
            [
                (root, b""),
                reg("./blobs/abc", b"weights"),
                link("./snap/model.bin", "../blobs/abc"),
                link("./hard", "blobs/abc", tarfile.LNKTYPE),
            ]
        )
    )
    dest = tmp_path / "out"
    unpack(archive, dest)
    assert (dest / "snap" / "model.bin").read_bytes() == b"weights"
    assert (dest / "hard").read_bytes() == b"weights"


HOSTILE_TARS = {
    "dotdot": ([reg("../evil", b"pwned")], "climbs out with '..'"),
    "nested-dotdot": ([reg("a/../../evil", b"pwned")], "climbs out with '..'"),
    "absolute": ([reg("/tmp/evil-modelport-test", b"pwned")], "absolute path"),
    "symlink-absolute": ([link("evil", "/etc/passwd")], "points outside"),
    "symlink-up": ([link("evil", "../../etc/passwd")], "points outside"),
    "hardlink-out": ([link("evil", "../outside", tarfile.LNKTYPE)], "points outside"),
    "symlink-through-link": (
        [link("s", "."), link("t", "s/../evil-dir"), reg("t/x", b"pwned")],
        "through the link 't'",
    ),
    "device": ([link("dev", "", tarfile.CHRTYPE)], "device file"),
    "fifo": ([link("fifo", "", tarfile.FIFOTYPE)], "device file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused_and_writes_nothing_outside(tmp_path: Path, case: str) -> None:
    entries, fragment = HOSTILE_TARS[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "model.tar.gz"
    archive.write_bytes(tar_bytes(entries))
    dest = work / "a" / "out"
    with pytest.raises(StorageError, match="refusing") as err:
        unpack(archive, dest)
    assert fragment in str(err.value)
    assert not (work / "a" / "evil").exists() and not (work / "evil").exists()
    assert not (work / "a" / "evil-dir").exists()
    assert not Path("/tmp/evil-modelport-test").exists()


HOSTILE_ZIPS = {
    "dotdot": ({"../evil": b"pwned"}, {}, "climbs out with '..'"),
    "absolute": ({"/tmp/evil-modelport-test": b"pwned"}, {}, "absolute path"),
    "backslash": ({"..\\evil": b"pwned"}, {}, "climbs out with '..'"),
    "symlink-out": ({}, {"evil": "../../etc/passwd"}, "points outside"),
    "symlink-absolute": ({"s/x": b"pwned"}, {"s": "/tmp"}, "points outside"),
    "symlink-through-link": (
        {"t/x": b"pwned"},
        {"s": ".", "t": "s/../evil-dir"},
        "through the link 't'",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused(tmp_path: Path, case: str) -> None:
    files, links, fragment = HOSTILE_ZIPS[case]
    archive = tmp_path / "model.zip"
    archive.write_bytes(zip_bytes(files, links))
    dest = tmp_path / "a" / "out"
    with pytest.raises(StorageError, match="refusing") as err:
        unpack(archive, dest)
    assert fragment in str(err.value)
    assert not (tmp_path / "a" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not (tmp_path / "a" / "evil-dir").exists()
    assert not Path("/tmp/x").exists() or Path("/tmp/x").read_bytes() != b"pwned"


def test_zip_inner_symlink_is_kept(tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    archive.write_bytes(zip_bytes({"blobs/w": b"weights"}, {"model.bin": "blobs/w"}))
    unpack(archive, tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").is_symlink()
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"weights"


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_archive_over_the_size_limit_is_refused(tmp_path: Path, kind: str) -> None:
    big = b"\0" * 10_000  # compresses to almost nothing: a tiny bomb
    if kind == "tar":
        archive = tmp_path / "model.tar.gz"
        archive.write_bytes(tar_bytes([reg("a", big), reg("b", big)]))
    else:
        archive = tmp_path / "model.zip"
        archive.write_bytes(zip_bytes({"a": big, "b": big}))
    with pytest.raises(StorageError, match="more than 15000 bytes"):
        unpack(archive, tmp_path / "out", max_bytes=15_000)
    unpack(archive, tmp_path / "ok", max_bytes=20_000)
    assert tree(tmp_path / "ok") == {"a": big, "b": big}


def test_zip_lying_about_its_size_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    archive.write_bytes(zip_bytes({"a": b"\0" * 50_000}))
    raw = bytearray(archive.read_bytes())
    # Declare 10 bytes (local and central headers) for an entry that inflates to 50 kB.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.index(sig) + offset
        raw[at : at + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(StorageError, match="not a valid archive"):
        unpack(archive, tmp_path / "out", max_bytes=20_000)
    assert (tmp_path / "out" / "a").stat().st_size <= 10


def test_zip_device_entry_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("dev")
        info.external_attr = (stat.S_IFCHR | 0o600) << 16
        zf.writestr(info, b"")
    archive = tmp_path / "model.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(StorageError, match="dev is a device file"):
        unpack(archive, tmp_path / "out")


def test_corrupt_archive_is_a_storage_error(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"this is not gzip")
    with pytest.raises(StorageError, match="not a valid archive"):
        unpack(archive, tmp_path / "out")


def test_hostile_download_leaves_nothing_in_the_cache(
    storage: Storage, http_files: FileServer, tmp_path: Path
) -> None:
    http_files.files["/model.tar.gz"] = tar_bytes([reg("ok", b"fine"), reg("../evil", b"pwned")])
    with pytest.raises(StorageError, match="refusing unsafe entry '../evil' in model.tar.gz"):
        storage.fetch(f"{http_files.url}/model.tar.gz")
    assert cache_entries(tmp_path / "cache") == []
    assert list((tmp_path / "cache" / ".tmp").iterdir()) == []
    assert not (tmp_path / "cache" / "evil").exists()


def test_stale_staging_dirs_are_removed_at_start(tmp_path: Path) -> None:
    staging = tmp_path / "cache" / ".tmp"
    old, fresh = staging / "old", staging / "fresh"
    old.mkdir(parents=True)
    fresh.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    Storage(tmp_path / "cache", tmp_path / "pvc", env={})
    assert not old.exists() and fresh.exists()


# ---- s3:// against moto ----------------------------------------------------------------------


def test_s3_prefix_downloads_every_object_with_relative_paths(
    s3_storage: Storage, bucket: tuple[str, Any]
) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="iris/model.joblib", Body=b"model")
    client.put_object(Bucket=name, Key="iris/code/__init__.py", Body=b"")
    client.put_object(Bucket=name, Key="iris/empty-dir/", Body=b"")  # console "folder" marker
    client.put_object(Bucket=name, Key="iris2/other.joblib", Body=b"not mine")
    calls: list[tuple[int, int | None]] = []

    path = s3_storage.fetch(f"s3://{name}/iris", lambda d, t: calls.append((d, t)))

    assert tree(path) == {"code/__init__.py": b"", "model.joblib": b"model"}
    assert calls[-1] == (5, 5)
    assert tree(s3_storage.fetch(f"s3://{name}/iris/")) == tree(path)


def test_s3_exact_object_wins_and_comes_back_as_a_directory(
    s3_storage: Storage, bucket: tuple[str, Any]
) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="models/model.onnx", Body=b"onnx")
    client.put_object(Bucket=name, Key="models/model.onnx.bak", Body=b"old")
    path = s3_storage.fetch(f"s3://{name}/models/model.onnx")
    assert path.is_dir()
    assert tree(path) == {"model.onnx": b"onnx"}


def test_s3_whole_bucket(s3_storage: Storage, bucket: tuple[str, Any]) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="a/b.txt", Body=b"b")
    client.put_object(Bucket=name, Key="c.txt", Body=b"c")
    assert tree(s3_storage.fetch(f"s3://{name}")) == {"a/b.txt": b"b", "c.txt": b"c"}


def test_s3_single_archive_is_unpacked(s3_storage: Storage, bucket: tuple[str, Any]) -> None:
    name, client = bucket
    client.put_object(
        Bucket=name,
        Key="packed/model.tar.gz",
        Body=tar_bytes([reg("model/model.joblib", b"m"), reg("model/settings.json", b"{}")]),
    )
    path = s3_storage.fetch(f"s3://{name}/packed")
    assert tree(path) == {"model/model.joblib": b"m", "model/settings.json": b"{}"}


def test_s3_cache_hit_lists_but_does_not_download(
    s3_storage: Storage, bucket: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="m/model.joblib", Body=b"v1")
    uri = f"s3://{name}/m"
    first = s3_storage.fetch(uri)

    fs = s3_storage._filesystem("s3")
    downloads: list[str] = []
    real_get = fs.get_file
    monkeypatch.setattr(
        fs, "get_file", lambda r, lp, **kw: downloads.append(r) or real_get(r, lp, **kw)
    )

    assert s3_storage.fetch(uri) == first
    assert downloads == []

    client.put_object(Bucket=name, Key="m/model.joblib", Body=b"v2")  # new ETag
    second = s3_storage.fetch(uri)
    assert second != first
    assert tree(second) == {"model.joblib": b"v2"}
    assert downloads == [f"{name}/m/model.joblib"]


def test_s3_added_object_changes_the_version(s3_storage: Storage, bucket: tuple[str, Any]) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="m/a", Body=b"a")
    first = s3_storage.fetch(f"s3://{name}/m")
    client.put_object(Bucket=name, Key="m/b", Body=b"b")
    second = s3_storage.fetch(f"s3://{name}/m")
    assert second != first
    assert tree(second) == {"a": b"a", "b": b"b"}


def test_s3_missing_bucket_and_key(
    s3_storage: Storage, bucket: tuple[str, Any], tmp_path: Path
) -> None:
    name, _ = bucket
    with pytest.raises(StorageError) as err:
        s3_storage.fetch("s3://no-such-bucket-modelport/model")
    assert str(err.value) == (
        "storage download failed: 404 Not Found (NoSuchBucket) from s3://no-such-bucket-modelport/model"
    )
    with pytest.raises(StorageError, match=f"no objects found at s3://{name}/missing"):
        s3_storage.fetch(f"s3://{name}/missing")
    assert cache_entries(tmp_path / "cache") == []


def test_s3_hostile_keys_are_refused(
    s3_storage: Storage, bucket: tuple[str, Any], tmp_path: Path
) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="m/../../escape.txt", Body=b"pwned")
    with pytest.raises(StorageError, match="climbs out"):
        s3_storage.fetch(f"s3://{name}/m")
    assert not (tmp_path / "escape.txt").exists()


def test_s3_unreachable_endpoint(tmp_path: Path, s3_server: S3Server) -> None:
    env = s3_server.env(AWS_ENDPOINT_URL="http://127.0.0.1:1", S3_MAX_ATTEMPTS="1")
    storage = Storage(tmp_path / "cache", tmp_path / "pvc", env=env)
    with pytest.raises(StorageError, match="cannot reach the endpoint for s3://models/iris"):
        storage.fetch("s3://models/iris")


def test_s3_endpoint_without_scheme_uses_s3_use_https(
    tmp_path: Path, s3_server: S3Server, bucket: tuple[str, Any]
) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="m/model.joblib", Body=b"m")
    env = s3_server.env()
    del env["AWS_ENDPOINT_URL"]
    env |= {"S3_ENDPOINT": s3_server.url.removeprefix("http://"), "S3_USE_HTTPS": "0"}
    storage = Storage(tmp_path / "cache", tmp_path / "pvc", env=env)
    assert tree(storage.fetch(f"s3://{name}/m")) == {"model.joblib": b"m"}


@pytest.fixture(scope="module")
def private_s3() -> Iterator[tuple[S3Server, dict[str, str], dict[str, str]]]:
    """A moto server that checks credentials: one user may read, one may do nothing."""
    server = start_s3_server()
    try:
        iam = boto3.client("iam", **server.client_kwargs())
        s3 = boto3.client("s3", **server.client_kwargs())
        s3.create_bucket(Bucket="private")
        s3.put_object(Bucket="private", Key="iris/model.joblib", Body=b"secret model")
        keys = {}
        for user in ("reader", "nobody"):
            iam.create_user(UserName=user)
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy))
        server.require_auth()

        def env(user: str) -> dict[str, str]:
            return server.env(
                AWS_ACCESS_KEY_ID=keys[user]["AccessKeyId"],
                AWS_SECRET_ACCESS_KEY=keys[user]["SecretAccessKey"],
            )

        yield server, env("reader"), env("nobody")
    finally:
        server.stop()


def test_s3_with_valid_credentials_on_a_checking_server(
    tmp_path: Path, private_s3: tuple[S3Server, dict[str, str], dict[str, str]]
) -> None:
    _, reader, _ = private_s3
    storage = Storage(tmp_path / "cache", tmp_path / "pvc", env=reader)
    assert tree(storage.fetch("s3://private/iris")) == {"model.joblib": b"secret model"}


@pytest.mark.parametrize("uri", ["s3://private/iris", "s3://private/iris/model.joblib"])
def test_s3_wrong_secret_is_403_without_leaking_it(
    tmp_path: Path, private_s3: tuple[S3Server, dict[str, str], dict[str, str]], uri: str
) -> None:
    _, reader, _ = private_s3
    env = reader | {"AWS_SECRET_ACCESS_KEY": "wrong-secret-value"}
    storage = Storage(tmp_path / "cache", tmp_path / "pvc", env=env)
    with pytest.raises(StorageError) as err:
        storage.fetch(uri)
    message = str(err.value)
    assert message.startswith(
        f"storage download failed: 403 Forbidden (SignatureDoesNotMatch) from {uri};"
    )
    assert "wrong-secret-value" not in message and reader["AWS_SECRET_ACCESS_KEY"] not in message


def test_s3_user_without_permission_gets_access_denied(
    tmp_path: Path, private_s3: tuple[S3Server, dict[str, str], dict[str, str]]
) -> None:
    _, _, nobody = private_s3
    storage = Storage(tmp_path / "cache", tmp_path / "pvc", env=nobody)
    with pytest.raises(StorageError) as err:
        storage.fetch("s3://private/iris")
    assert str(err.value).startswith(
        "storage download failed: 403 Forbidden (AccessDenied) from s3://private/iris;"
    )


# ---- S3 settings from KServe's variables -----------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"S3_ENDPOINT": "minio:9000"}, "https://minio:9000"),
        ({"S3_ENDPOINT": "minio:9000", "S3_USE_HTTPS": "0"}, "http://minio:9000"),
        ({"S3_ENDPOINT": "minio:9000", "S3_USE_HTTPS": "1"}, "https://minio:9000"),
        ({"S3_ENDPOINT": "http://minio:9000", "S3_USE_HTTPS": "1"}, "http://minio:9000"),
        ({"S3_ENDPOINT": "minio:9000", "AWS_ENDPOINT_URL": "http://other:1"}, "http://other:1"),
        ({}, None),
    ],
)
def test_s3_endpoint_from_env(env: dict[str, str], expected: str | None) -> None:
    settings = S3Settings.from_env(env)
    assert settings.endpoint_url == expected
    assert settings.filesystem_kwargs().get("endpoint_url") == expected


def test_s3_settings_from_env() -> None:
    settings = S3Settings.from_env(
        {
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "very-secret",
            "AWS_SESSION_TOKEN": "tok",
            "AWS_REGION": "eu-west-1",
            "S3_VERIFY_SSL": "0",
            "S3_MAX_ATTEMPTS": "7",
        }
    )
    kwargs = settings.filesystem_kwargs()
    assert (kwargs["key"], kwargs["secret"], kwargs["token"]) == ("AKID", "very-secret", "tok")
    assert kwargs["client_kwargs"] == {"verify": False, "region_name": "eu-west-1"}
    assert kwargs["config_kwargs"]["retries"]["max_attempts"] == 7
    assert "very-secret" not in repr(settings)
    assert S3Settings.from_env({"AWS_DEFAULT_REGION": "a", "AWS_REGION": "b"}).region == "a"
    assert S3Settings.from_env({"AWS_CA_BUNDLE": "/ca.pem"}).verify == "/ca.pem"


@pytest.mark.parametrize("var", ["AWS_ANONYMOUS_CREDENTIAL", "awsAnonymousCredential"])
def test_s3_anonymous_credential_drops_keys(var: str) -> None:
    kwargs = S3Settings.from_env({var: "true", "AWS_ACCESS_KEY_ID": "AKID"}).filesystem_kwargs()
    assert kwargs["anon"] is True and "key" not in kwargs


def test_s3_bad_integer_setting_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="S3_READ_TIMEOUT must be an integer"):
        Storage(tmp_path / "c", tmp_path / "p", env={"S3_READ_TIMEOUT": "soon"})


# ---- gs:// -----------------------------------------------------------------------------------


def test_gs_without_gcsfs_says_what_to_install(storage: Storage) -> None:
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here; this checks the message shown without it")
    with pytest.raises(StorageError, match=r"gs:// needs gcsfs: pip install gcsfs"):
        storage.fetch("gs://bucket/model")
