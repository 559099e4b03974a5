"""Fixtures for control-plane tests: a real S3-compatible server (moto) for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3server import S3Server, start_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the whole session; tests use their own buckets."""
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()
