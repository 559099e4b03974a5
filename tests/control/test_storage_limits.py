"""The download size limit, against a real HTTP server that declares too much, declares nothing
or compresses, and against moto's S3 server with a listing and an object that changes."""

from __future__ import annotations

import gzip
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import s3fs

from modelport.control.storage import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    ObjectStoreSource,
    S3Settings,
    Storage,
    StorageError,
)
from tests.s3server import S3Server

LIMIT = 2**20
TOO_LARGE = "larger than the download limit of 1 MiB (1048576 bytes)"
ENDLESS = 256 * 2**20  # what the streaming routes would send if the client never stopped
PIECE = b"\x5a" * 2**16


@dataclass
class Server:
    url: str = ""
    sent: dict[str, int] = field(default_factory=dict)
    accept_encoding: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self) -> None:
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            state.accept_encoding.append(", ".join(self.headers.get_all("Accept-Encoding", [])))
            route = getattr(self, "route_" + self.path.strip("/").split(".")[0], None)
            if route is None:
                self.send_error(404)
                return
            try:
                route()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what the limit is for

        def body(self, data: bytes, **headers: str) -> None:
            self.send_response(200)
            self.send_header("Content-Length", headers.pop("length", str(len(data))))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def stream(self, chunked: bool) -> None:
            self.send_response(200)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Connection", "close")  # the body ends when the socket does
                self.close_connection = True
            self.end_headers()
            for _ in range(ENDLESS // len(PIECE)):
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(PIECE), PIECE))
                else:
                    self.wfile.write(PIECE)
                state.sent[self.path] = state.sent.get(self.path, 0) + len(PIECE)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")

        def route_declared(self) -> None:
            # Says 1 GiB up front and would send it: refused before the body is read.
            self.send_response(200)
            self.send_header("Content-Length", str(2**30))
            self.end_headers()
            self.wfile.write(PIECE)

        def route_chunked(self) -> None:
            self.stream(chunked=True)

        def route_unframed(self) -> None:
            self.stream(chunked=False)

        def route_bomb(self) -> None:
            # 16 MiB of zeros compresses to ~16 KiB: Content-Length is tiny and true.
            self.body(gzip.compress(b"\0" * 16 * 2**20), Content_Encoding="gzip")

        def route_stacked(self) -> None:
            data = gzip.compress(gzip.compress(b"\0" * 2**20))
            self.body(data, Content_Encoding="gzip, gzip")

        def route_small(self) -> None:
            self.body(gzip.compress(b"model " * 1000), Content_Encoding="gzip")

        def route_exact(self) -> None:
            self.body(b"\1" * LIMIT)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "cache", tmp_path / "pvc", env={}, max_download_bytes=LIMIT)


def assert_nothing_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert [p for p in cache.iterdir() if p.name != ".tmp"] == []
    assert list((cache / ".tmp").iterdir()) == []


def test_default_limit_is_20_gib(tmp_path: Path) -> None:
    assert DEFAULT_MAX_DOWNLOAD_BYTES == 20 * 2**30
    assert Storage(tmp_path / "c", tmp_path / "p", env={}).max_download_bytes == 20 * 2**30


@pytest.mark.parametrize("route", ["declared", "chunked", "unframed", "bomb"])
def test_http_download_past_the_limit_is_refused(
    storage: Storage, server: Server, tmp_path: Path, route: str
) -> None:
    with pytest.raises(StorageError) as err:
        storage.fetch(f"{server.url}/{route}.bin")
    assert str(err.value) == (f"storage download failed: {server.url}/{route}.bin is {TOO_LARGE}")
    assert_nothing_kept(tmp_path)
    # Stopped while streaming, not after: far less than the server was ready to send.
    assert server.sent.get(f"/{route}.bin", 0) < ENDLESS // 4


def test_http_asks_for_no_compression_and_decodes_gzip_it_gets_anyway(
    storage: Storage, server: Server
) -> None:
    path = storage.fetch(f"{server.url}/small.bin")
    assert (path / "small.bin").read_bytes() == b"model " * 1000
    assert server.accept_encoding == ["identity"]


def test_http_compression_asked_for_in_kserve_headers_is_decoded(
    server: Server, tmp_path: Path
) -> None:
    env = {"127.0.0.1-headers": '{"accept-encoding": "gzip"}'}
    storage = Storage(tmp_path / "cache", tmp_path / "pvc", env=env)
    path = storage.fetch(f"{server.url}/small.bin")
    assert (path / "small.bin").read_bytes() == b"model " * 1000
    assert server.accept_encoding == ["gzip"]


def test_http_stacked_encodings_are_refused(storage: Storage, server: Server) -> None:
    with pytest.raises(StorageError, match="Content-Encoding 'gzip, gzip'"):
        storage.fetch(f"{server.url}/stacked.bin")


def test_http_download_of_exactly_the_limit_is_kept(storage: Storage, server: Server) -> None:
    path = storage.fetch(f"{server.url}/exact.bin")
    assert (path / "exact.bin").stat().st_size == LIMIT


# ---- s3 --------------------------------------------------------------------------------------


@pytest.fixture
def bucket(s3_server: S3Server) -> tuple[str, Any]:
    client = boto3.client("s3", **s3_server.client_kwargs())
    name = f"t-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return name, client


def test_s3_prefix_whose_listing_is_past_the_limit_is_refused_before_download(
    tmp_path: Path, s3_server: S3Server, bucket: tuple[str, Any]
) -> None:
    name, client = bucket
    for key in ("model/a.bin", "model/b.bin"):  # each under the limit, together over it
        client.put_object(Bucket=name, Key=key, Body=os.urandom(600 * 1024))
    storage = Storage(
        tmp_path / "cache", tmp_path / "pvc", env=s3_server.env(), max_download_bytes=LIMIT
    )
    with pytest.raises(StorageError) as err:
        storage.fetch(f"s3://{name}/model")
    assert str(err.value) == f"storage download failed: s3://{name}/model is {TOO_LARGE}"
    assert_nothing_kept(tmp_path)

    client.delete_object(Bucket=name, Key="model/b.bin")
    assert (storage.fetch(f"s3://{name}/model") / "a.bin").stat().st_size == 600 * 1024


def test_s3_object_that_grows_after_listing_is_refused(
    tmp_path: Path, s3_server: S3Server, bucket: tuple[str, Any]
) -> None:
    name, client = bucket
    client.put_object(Bucket=name, Key="model.bin", Body=b"small")
    fs = s3fs.S3FileSystem(**S3Settings.from_env(s3_server.env()).filesystem_kwargs())
    source = ObjectStoreSource(f"s3://{name}/model.bin", fs, max_bytes=LIMIT)
    source.probe()  # the listing says 5 bytes
    client.put_object(Bucket=name, Key="model.bin", Body=os.urandom(3 * LIMIT))
    with pytest.raises(StorageError, match=TOO_LARGE.replace("(", r"\(").replace(")", r"\)")):
        source.download(tmp_path / "dest", None)
    written = tmp_path / "dest" / "model.bin"
    assert not written.exists() or written.stat().st_size <= LIMIT
