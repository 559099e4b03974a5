"""Every data file of the package is declared in pyproject's package-data, so a wheel built
from it (`pip install modelport`) has the login pages, the web page and the proto file."""

from __future__ import annotations

import fnmatch
import tomllib

from tests.conftest import ROOT


def test_every_data_file_ships_in_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["modelport"]
    package = ROOT / "modelport"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc", ".pyi") and "__pycache__" not in p.parts
    ]
    assert data, "the package has data files (templates, static files, the proto)"
    missing = [f for f in data if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert missing == []


def test_one_version_everywhere():
    from importlib.metadata import version

    import modelport

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert version("modelport") == modelport.__version__
