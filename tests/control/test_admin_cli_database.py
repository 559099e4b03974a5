"""The local administration commands (``modelport users``, ``namespaces``, ``tokens``) reach
the database instances share when given ``--database-url`` or ``MODELPORT_DATABASE_URL``,
rather than an empty SQLite file in DATA_DIR (real CLI processes, real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from modelport.access.authz import Authorizer
from modelport.identity.db import make_engine, session_factory
from modelport.identity.users import Directory
from tests.conftest import ROOT
from tests.helpers.pgdatabase import fresh_database
from tests.pgserver import start_pg_server


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    server = start_pg_server()
    yield fresh_database(server.url)
    server.stop()


def _run(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=input,
        cwd=ROOT,
        timeout=120,
    )


def test_users_namespaces_and_tokens_act_on_the_shared_database(database_url: str, tmp_path: Path):
    data = ["--data-dir", str(tmp_path / "data")]
    by_flag = ["--database-url", database_url]
    by_env = {"MODELPORT_DATABASE_URL": database_url}
    added = _run(
        "users", "add", "ops@example.com", "--admin", "--password-stdin", *data, *by_flag,
        input="a long enough password 1\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = _run("users", "list", *data, env=by_env)
    assert "ops@example.com" in listed.stdout, listed.stderr
    created = _run("namespaces", "create", "team-a", "--owner", "ops@example.com", *data, *by_flag)
    assert created.returncode == 0, created.stderr
    assert "team-a" in _run("namespaces", "list", *data, env=by_env).stdout
    token = _run(
        "tokens", "create", "--namespace", "team-a", "--owner", "ops@example.com",
        "--role", "edit", *data, env=by_env,
    )  # fmt: skip
    assert token.returncode == 0, token.stderr

    # What a platform on that database sees: the user, the namespace, a token that works.
    engine = make_engine(database_url)
    try:
        user = Directory(session_factory(engine)).get_user("ops@example.com")
        assert user is not None and user.admin
        authorizer = Authorizer(engine)
        assert [ns.name for ns in authorizer.list_namespaces()] == ["team-a"]
        grant = authorizer.verify_token(token.stdout.strip())
        assert grant is not None
    finally:
        engine.dispose()
    # Nothing went to a SQLite file of its own.
    assert not (tmp_path / "data" / "identity.db").exists()

    token_id = token.stdout.strip().removeprefix("mpt_").split("_")[0]
    revoked = _run("tokens", "revoke", token_id, *data, *by_flag)
    assert revoked.returncode == 0, revoked.stderr
    engine = create_engine(database_url)
    try:
        assert Authorizer(engine).verify_token(token.stdout.strip()) is None
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path):
    done = _run(
        "users", "list", "--data-dir", str(tmp_path),
        "--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/none",
    )  # fmt: skip
    assert done.returncode != 0
    assert "cannot open the database" in done.stderr and "Traceback" not in done.stderr
