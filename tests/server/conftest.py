"""Servers shared by the tests of one module (starting one costs about a second)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_MODELS, ServerProcess, launch, serve_argv


@pytest.fixture(scope="module")
def iris_server(iris_dir: Path) -> Iterator[ServerProcess]:
    """The iris model with two workers and a small body limit."""
    server = launch(serve_argv(iris_dir, "sklearn-iris", "--workers", "2", "--max-body-mb", "1"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def behaviour_server() -> Iterator[ServerProcess]:
    """The custom test model (tests/server/models/behaviours.py) with one worker."""
    server = launch(
        serve_argv(
            TEST_MODELS / "behaviours.py", "behaviours", "--format", "custom", "--max-inflight", "4"
        )
    )
    yield server
    server.stop()
