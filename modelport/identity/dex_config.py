"""Dex's own configuration file format, loaded as-is (the parts an embedded provider uses).

Recognised: ``issuer``, ``staticPasswords`` (``email``, bcrypt ``hash``/``hashFromEnv``,
``username``, ``userID``), ``staticClients`` (``id``/``idEnv``, ``secret``/``secretEnv``,
``redirectURIs``, ``name``, ``public``, ``trustedPeers``), ``expiry`` (``idTokens``,
``signingKeys``, ``deviceRequests``, ``refreshTokens.validIfNotUsedFor``/``absoluteLifetime``)
and ``oauth2``
(``skipApprovalScreen``, ``passwordConnector``). Everything else (storage, web, connectors
other than the local password DB, ...) is kept in ``ignored`` and reported, not acted on.
Reference: Dex's ``config.yaml.dist`` and ``cmd/dex/config.go``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """The file is not a usable Dex configuration; the message names the field."""


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string such as ``24h``, ``1h30m`` or ``90s``."""
    text = text.strip()
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration such as 24h, 10m or 90s")
    return total


class _Strict(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


_M = TypeVar("_M", bound=_Strict)


class StaticPassword(_Strict):
    """One ``staticPasswords`` entry."""

    email: str
    hash: str = ""
    hash_from_env: str | None = Field(None, alias="hashFromEnv")
    username: str = ""
    user_id: str = Field("", alias="userID")
    # modelport extensions, ignored by Dex: group membership and admin rights.
    groups: list[str] = Field(default_factory=list)
    admin: bool = False

    @model_validator(mode="after")
    def _resolve_hash(self) -> StaticPassword:
        if not self.hash and self.hash_from_env:
            self.hash = os.environ.get(self.hash_from_env, "")
            if not self.hash:
                raise ValueError(f"hashFromEnv: variable {self.hash_from_env} is not set")
        if not self.hash.startswith(("$2a$", "$2b$", "$2y$", "$argon2")):
            raise ValueError("hash must be a bcrypt hash ($2a$/$2b$/$2y$) or an argon2 hash")
        return self


class StaticClient(_Strict):
    """One ``staticClients`` entry."""

    id: str
    id_env: str | None = Field(None, alias="idEnv")
    secret: str | None = None
    secret_env: str | None = Field(None, alias="secretEnv")
    redirect_uris: list[str] = Field(default_factory=list, alias="redirectURIs")
    name: str = ""
    public: bool = False
    trusted_peers: list[str] = Field(default_factory=list, alias="trustedPeers")


class Expiry(BaseModel):
    """Token and key lifetimes, in seconds."""

    id_tokens: float = 24 * 3600
    signing_keys: float = 6 * 3600
    device_requests: float = 5 * 60
    refresh_valid_if_not_used_for: float = 0.0  # 0 = no limit (Dex's default)
    refresh_absolute_lifetime: float = 0.0


class DexConfig(BaseModel):
    """The Dex configuration as modelport uses it."""

    issuer: str | None = None
    static_passwords: list[StaticPassword] = Field(default_factory=list)
    static_clients: list[StaticClient] = Field(default_factory=list)
    expiry: Expiry = Field(default_factory=Expiry)
    skip_approval_screen: bool = False
    password_connector: str | None = None
    ignored: list[str] = Field(default_factory=list)


_KNOWN = {"issuer", "staticPasswords", "staticClients", "expiry", "oauth2", "enablePasswordDB"}


def load_dex_config(path: str | Path) -> DexConfig:
    """Read a Dex YAML file; raises ConfigError naming the offending field."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_dex_config(raw or {})


def parse_dex_config(raw: Any) -> DexConfig:
    """Build a DexConfig from already-parsed YAML."""
    if not isinstance(raw, dict):
        raise ConfigError("the Dex configuration must be a mapping")
    passwords = _entries("staticPasswords", StaticPassword, raw.get("staticPasswords"))
    clients = _entries("staticClients", StaticClient, raw.get("staticClients"))
    for client in clients:
        if client.id_env and os.environ.get(client.id_env):
            client.id = os.environ[client.id_env]
        if client.secret is None and client.secret_env:
            client.secret = os.environ.get(client.secret_env)
            if client.secret is None:
                raise ConfigError(
                    f"staticClients[{client.id}].secretEnv: variable {client.secret_env} is not set"
                )
        if client.secret is None and not client.public:
            raise ConfigError(f"staticClients[{client.id}]: a confidential client needs a secret")
    expiry = _expiry(raw.get("expiry") or {})
    oauth2 = raw.get("oauth2") or {}
    if not isinstance(oauth2, dict):
        raise ConfigError("oauth2 must be a mapping")
    ignored = sorted(k for k in raw if k not in _KNOWN)
    return DexConfig(
        issuer=raw.get("issuer"),
        static_passwords=passwords,
        static_clients=clients,
        expiry=expiry,
        skip_approval_screen=bool(oauth2.get("skipApprovalScreen", False)),
        password_connector=oauth2.get("passwordConnector"),
        ignored=ignored,
    )


def _expiry(raw: Any) -> Expiry:
    if not isinstance(raw, dict):
        raise ConfigError("expiry must be a mapping")
    fields: dict[str, float] = {}
    names = {
        "idTokens": "id_tokens",
        "signingKeys": "signing_keys",
        "deviceRequests": "device_requests",
    }
    for key, name in names.items():
        if key in raw:
            fields[name] = _duration(f"expiry.{key}", raw[key])
    refresh = raw.get("refreshTokens") or {}
    if "validIfNotUsedFor" in refresh:
        fields["refresh_valid_if_not_used_for"] = _duration(
            "expiry.refreshTokens.validIfNotUsedFor", refresh["validIfNotUsedFor"]
        )
    if "absoluteLifetime" in refresh:
        fields["refresh_absolute_lifetime"] = _duration(
            "expiry.refreshTokens.absoluteLifetime", refresh["absoluteLifetime"]
        )
    return Expiry(**fields)


def _duration(field: str, value: Any) -> float:
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None


def _entries(section: str, model: type[_M], raw: Any) -> list[_M]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{section} must be a list")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{section}[{i}].{where}: {first['msg']}") from None
    return out
