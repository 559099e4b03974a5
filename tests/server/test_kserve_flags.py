"""KServe's model_server flags: read from the command line when a script asks, not at import."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.argv = ["model.py", "--http_port", "9123", "--model_name", "iris", "--unknown", "x"]
from modelport import model_server
import argparse
own = argparse.ArgumentParser(parents=[model_server.parser])
own.add_argument("--extra", default="e")
mine, _ = own.parse_known_args()
print(model_server.args.http_port, model_server.args.model_name, mine.extra, mine.http_port)
"""


def run(code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60
    )


def test_args_hold_the_command_line_and_parser_is_a_parent() -> None:
    done = run(SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["9123", "iris", "e", "9123"]


def test_importing_does_not_parse_the_command_line() -> None:
    # A bad value for one of KServe's flags must not stop a program that only imports the
    # module (a test runner, a notebook with its own argv); reading ``args`` reports it.
    imported = run("from modelport import model_server; print('ok')", "--http_port", "nan")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "ok"
    read = run("from modelport import model_server; model_server.args", "--http_port", "nan")
    assert read.returncode == 2
    assert "--http_port: invalid int value: 'nan'" in read.stderr


def test_unknown_attribute_is_an_attribute_error() -> None:
    done = run("from modelport import model_server; model_server.nothing")
    assert "AttributeError: module 'modelport.model_server' has no attribute 'nothing'" in (
        done.stderr
    )
