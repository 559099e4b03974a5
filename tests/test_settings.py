"""modelport.settings: the readers of the environment, and what importing them costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelport import settings
from tests.conftest import ROOT


def test_first_admin_takes_the_password_with_the_given_taker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELPORT_ADMIN_EMAIL", "Root@Example.com")
    monkeypatch.setenv("MODELPORT_ADMIN_PASSWORD", "hunter2-secret")
    taken: list[str] = []

    def take(name: str) -> str | None:
        taken.append(name)
        return "from-taker"

    admin = settings.first_admin(take=take)
    assert admin.email == "Root@Example.com"
    assert admin.password == "from-taker"
    assert taken == ["MODELPORT_ADMIN_PASSWORD"]
    assert "from-taker" not in repr(admin)


def test_first_admin_pops_the_password_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELPORT_ADMIN_EMAIL", raising=False)
    monkeypatch.setenv("MODELPORT_ADMIN_PASSWORD", "hunter2-secret")
    admin = settings.first_admin()
    assert admin == settings.FirstAdmin(email=None, password="hunter2-secret")
    assert settings.first_admin().password is None  # gone from the environment


def test_predictor_link_hides_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_PREDICTOR_HOST", "127.0.0.1:9001")
    monkeypatch.setenv("MODELPORT_PREDICTOR_KEY", "replica-secret")
    monkeypatch.delenv("MODELPORT_PREDICTOR_PROTOCOL", raising=False)
    link = settings.predictor_link()
    assert (link.host, link.protocol, link.key) == ("127.0.0.1:9001", None, "replica-secret")
    assert "replica-secret" not in repr(link)


@pytest.mark.parametrize("value", ["", None])
def test_an_empty_or_missing_token_is_none(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("MODELPORT_TOKEN", raising=False)
    else:
        monkeypatch.setenv("MODELPORT_TOKEN", value)
    assert settings.api_token() is None


def test_config_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELPORT_CONFIG_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert settings.config_dir() == tmp_path / "home" / ".config" / "modelport"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert settings.config_dir() == tmp_path / "xdg" / "modelport"
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "mine"))
    assert settings.config_dir() == tmp_path / "mine"
    assert settings.explicit_config_dir() == tmp_path / "mine"


def test_importing_settings_leaves_pydantic_to_model_servers() -> None:
    # Every CLI command imports modelport.settings; pydantic costs ~150 ms to import.
    check = (
        "import sys, modelport.settings as s\n"
        "assert 'pydantic' not in sys.modules, 'pydantic imported'\n"
        "assert s.ServerSettings(http_port=9000).http_port == 9000\n"
        "assert 'pydantic' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


def test_server_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.settings import ServerSettings

    monkeypatch.setenv("MODELPORT_WORKERS", "3")
    monkeypatch.setenv("MODELPORT_REPLICA_KEY", "k")
    read = ServerSettings()
    assert read.workers == 3
    assert read.replica_key is not None and read.replica_key.get_secret_value() == "k"
