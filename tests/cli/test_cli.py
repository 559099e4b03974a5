"""The CLI's help and error surface (the serve command itself is exercised in tests/server)."""

from __future__ import annotations

import subprocess
import sys

from modelport.version import __version__


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_commands():
    proc = run("--help")
    assert proc.returncode == 0
    assert "serve" in proc.stdout
    assert "version" in proc.stdout


def test_serve_help_documents_every_option():
    proc = run("serve", "--help")
    assert proc.returncode == 0
    for option in (
        "--name",
        "--format",
        "--http-port",
        "--grpc-port",
        "--workers",
        "--max-batch-size",
        "--max-latency-ms",
        "--max-inflight",
        "--max-body-mb",
        "--predict-proba",
        "--log-level",
    ):
        assert option in proc.stdout, option


def test_version():
    proc = run("version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == __version__


def test_invalid_option_value_is_one_line_error(iris_dir):
    proc = run("serve", str(iris_dir), "--workers", "0")
    assert proc.returncode == 2
    assert "workers" in proc.stderr


def test_help_shows_defaults_written_in_brackets():
    # Help texts say "[default: …]" themselves; Rich markup would swallow it as a tag.
    assert "[default: SQLite in DATA_DIR]" in " ".join(run("up", "--help").stdout.split())
    serve = " ".join(run("serve", "--help").stdout.split())
    assert "[default: 32 for scikit-learn/XGBoost/LightGBM, else 1]" in serve


def test_up_notes_a_database_url_without_a_password() -> None:
    from modelport.cli.up import _without_password

    assert _without_password("postgresql+psycopg://modelport@db/modelport")
    assert not _without_password("postgresql+psycopg://modelport:secret@db/modelport")
    assert not _without_password("sqlite:////srv/control.db")
    assert not _without_password("not a url")
