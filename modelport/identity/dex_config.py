"""Dex's own configuration file format, loaded as-is (the parts an embedded provider uses).

Acted on: ``staticPasswords`` (``email``, bcrypt ``hash`` or ``hashFromEnv``, ``username``,
``userID``, ``groups``), ``staticClients`` (``id`` or ``idEnv``, ``secret`` or ``secretEnv``,
``redirectURIs``, ``name``, ``public``, ``trustedPeers``), ``expiry`` (``idTokens``,
``signingKeys``, ``refreshTokens.validIfNotUsedFor``/``absoluteLifetime``) and
``oauth2.skipApprovalScreen``. ``issuer`` is read for the caller to compare with the issuer it
serves. Keys that ask for what modelport does anyway (``enablePasswordDB: true``,
``oauth2.passwordConnector: local``, Dex's default ``expiry.authRequests``/``deviceRequests``)
count as acted on. Every other key (``storage``, ``web``, ``logger``, ``connectors``,
``staticClients[0].logoURL``, ...) is listed by its path in ``ignored``, for the caller to report.

A Kubernetes ConfigMap holding the file under ``data.config.yaml`` -- how Kubeflow ships it
(kubeflow/manifests ``common/dex/base/config-map.yaml``, mounted by its Deployment as
``/etc/dex/cfg/config.yaml``) -- is read as the file it holds.

Reference: Dex v2.44/v2.45 ``cmd/dex/config.go`` (``Config``, ``password.UnmarshalJSON``) and
``cmd/dex/serve.go`` (static clients' ``idEnv``/``secretEnv``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# What Go's bcrypt.Cost accepts (version 2a/2b/2y, cost 4-31, 53 characters of salt and
# hash), restricted to the versions the Python bcrypt library verifies.
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")
# The key Dex's Deployment mounts from its ConfigMap (kubeflow/manifests deployment.yaml).
CONFIGMAP_KEY = "config.yaml"


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


class _Entry(BaseModel):
    # Unknown keys are kept (model_extra) so that they can be reported, not refused.
    model_config = ConfigDict(populate_by_name=True, extra="allow")


_M = TypeVar("_M", bound=_Entry)


class StaticPassword(_Entry):
    """One ``staticPasswords`` entry (``hashFromEnv`` already resolved into ``hash``)."""

    email: str
    hash: str = ""
    hash_from_env: str | None = Field(None, alias="hashFromEnv")
    username: str = ""
    user_id: str = Field("", alias="userID")
    # Dex ≥ 2.45 reads groups too; admin is a modelport extension Dex ignores.
    groups: list[str] = Field(default_factory=list)
    admin: bool = False


class StaticClient(_Entry):
    """One ``staticClients`` entry (``idEnv``/``secretEnv`` already resolved)."""

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
    device_requests: float = 5 * 60  # fixed: see FIXED_EXPIRY
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
    # Paths of the keys not acted on ("storage", "oauth2.responseTypes", ...), sorted.
    ignored: list[str] = Field(default_factory=list)
    # Where the file held the config, when it was not the file itself ("ConfigMap dex").
    container: str | None = None


_TOP = ("issuer", "staticPasswords", "staticClients", "expiry", "oauth2", "enablePasswordDB")
_EXPIRY = {"idTokens": "id_tokens", "signingKeys": "signing_keys"}
_REFRESH = {
    "validIfNotUsedFor": "refresh_valid_if_not_used_for",
    "absoluteLifetime": "refresh_absolute_lifetime",
}
# Lifetimes modelport keeps fixed at Dex's defaults (provider.AUTH_REQUEST_TTL_S,
# oauth2/device.DEVICE_TTL_S): a file asking for exactly these is honoured, others reported.
FIXED_EXPIRY = {"authRequests": 24 * 3600.0, "deviceRequests": 5 * 60.0}


def load_dex_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> DexConfig:
    """Read a Dex YAML file (or a ConfigMap holding one); raises ConfigError naming the field.

    ``env`` is where ``idEnv``, ``secretEnv`` and ``hashFromEnv`` are looked up (the caller
    passes the process environment; nothing here reads it).
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_dex_config(_yaml(text, str(path)), env=env)


def parse_dex_config(raw: Any, *, env: Mapping[str, str] | None = None) -> DexConfig:
    """Build a DexConfig from already-parsed YAML; see load_dex_config for ``env``."""
    env = env if env is not None else {}
    raw, container = _unwrap_configmap(raw or {})
    if not isinstance(raw, dict):
        raise ConfigError("the Dex configuration must be a mapping")
    ignored = [key for key in raw if key not in _TOP]
    passwords = _entries("staticPasswords", StaticPassword, raw.get("staticPasswords"), env)
    clients = _entries("staticClients", StaticClient, raw.get("staticClients"), env)
    _check_passwords(passwords)
    _check_password_db(raw, passwords, ignored)
    oauth2 = _mapping("oauth2", raw.get("oauth2"))
    skip = oauth2.get("skipApprovalScreen", False)
    if not isinstance(skip, bool):
        raise ConfigError("oauth2.skipApprovalScreen must be true or false")
    for key, value in oauth2.items():
        # The password grant always checks modelport's own users: Dex's `local` connector.
        if key != "skipApprovalScreen" and (key, value) != ("passwordConnector", "local"):
            ignored.append(f"oauth2.{key}")
    issuer = raw.get("issuer")
    if issuer is not None and not isinstance(issuer, str):
        raise ConfigError("issuer must be a URL")
    for kind, entries in (("staticPasswords", passwords), ("staticClients", clients)):
        for i, entry in enumerate(entries):
            ignored.extend(f"{kind}[{i}].{key}" for key in entry.model_extra or {})
    return DexConfig(
        issuer=issuer,
        static_passwords=passwords,
        static_clients=clients,
        expiry=_expiry(_mapping("expiry", raw.get("expiry")), ignored),
        skip_approval_screen=skip,
        password_connector=oauth2.get("passwordConnector"),
        ignored=sorted(ignored),
        container=container,
    )


def _yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the position: PyYAML's own message quotes the line, which may hold a secret.
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{where} is not valid YAML: {problem}{at}") from None


def _unwrap_configmap(raw: Any) -> tuple[Any, str | None]:
    """The Dex config a Kubernetes ConfigMap holds, and a name for where it was found."""
    if not (isinstance(raw, dict) and raw.get("kind") == "ConfigMap" and "apiVersion" in raw):
        return raw, None
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name = f"ConfigMap {metadata.get('name', '(unnamed)')}"
    data = raw.get("data")
    data = data if isinstance(data, dict) else {}
    text = data.get(CONFIGMAP_KEY)
    if not isinstance(text, str):
        raise ConfigError(
            f"{name} has no data.{CONFIGMAP_KEY} (the key Dex's Deployment mounts as its config)"
        )
    return _yaml(text, f"{name} data.{CONFIGMAP_KEY}") or {}, name


def _from_env(field: str, variable: Any, env: Mapping[str, str]) -> str:
    if not isinstance(variable, str) or not variable:
        raise ConfigError(f"{field} must name an environment variable")
    value = env.get(variable, "")
    if not value:
        # Dex would carry on with an empty value (os.Getenv); an unset variable is a mistake.
        raise ConfigError(f"{field}: variable {variable} is not set")
    return value


def _resolve_password(where: str, item: dict[str, Any], env: Mapping[str, str]) -> None:
    # Dex's password.UnmarshalJSON: hashFromEnv is read only when hash is empty.
    if not item.get("hash") and item.get("hashFromEnv"):
        item["hash"] = _from_env(f"{where}.hashFromEnv", item["hashFromEnv"], env)


def _resolve_client(where: str, item: dict[str, Any], env: Mapping[str, str]) -> None:
    # Dex's serve.go: id and idEnv (likewise secret and secretEnv) are exclusive, one of
    # id/idEnv is required, and so is a secret unless the client is public.
    for plain, from_env in (("id", "idEnv"), ("secret", "secretEnv")):
        if item.get(from_env):
            if item.get(plain):
                raise ConfigError(f"{where}: {plain} and {from_env} are exclusive")
            item[plain] = _from_env(f"{where}.{from_env}", item[from_env], env)
    if not item.get("id"):
        raise ConfigError(f"{where}: id or idEnv is required")
    if not item.get("secret") and item.get("public") is not True:
        raise ConfigError(f"{where}: a confidential client needs a secret (secret or secretEnv)")


_RESOLVERS = {"staticPasswords": _resolve_password, "staticClients": _resolve_client}


def _entries(section: str, model: type[_M], raw: Any, env: Mapping[str, str]) -> list[_M]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{section} must be a list")
    out = []
    for i, item in enumerate(raw):
        where = f"{section}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a mapping")
        item = dict(item)
        # Before validation: a client given only by idEnv has no id until this runs.
        _RESOLVERS[section](where, item, env)
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{where}.{field}: {first['msg']}") from None
    return out


def _check_passwords(passwords: list[StaticPassword]) -> None:
    for i, entry in enumerate(passwords):
        where = f"staticPasswords[{i}]"
        if not entry.hash:
            raise ConfigError(f"{where}: no password hash provided (hash or hashFromEnv)")
        usable = _usable_hash(entry.hash)
        if usable is None:
            # The value is never quoted: it may be a password pasted by mistake.
            raise ConfigError(
                f"{where}.{'hashFromEnv' if entry.hash_from_env else 'hash'}: "
                "not a bcrypt hash ($2a$/$2b$/$2y$, or base64 of one) or an argon2 hash"
            )
        entry.hash = usable


def _usable_hash(value: str) -> str | None:
    """The hash as stored: bcrypt as-is, or base64-decoded bcrypt (Dex's legacy form)."""
    if _BCRYPT.fullmatch(value) or value.startswith("$argon2"):
        return value
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded if _BCRYPT.fullmatch(decoded) else None


def _check_password_db(
    raw: dict[str, Any], passwords: list[StaticPassword], ignored: list[str]
) -> None:
    enabled = raw.get("enablePasswordDB")
    if enabled is True or enabled is None:
        # Unset is allowed (unlike Dex): modelport's password users are always enabled.
        return
    if passwords:
        # Dex's Config.Validate refuses this combination with the same words.
        raise ConfigError("cannot specify static passwords without enabling password db")
    ignored.append("enablePasswordDB")


def _mapping(field: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{field} must be a mapping")
    return value


def _expiry(raw: dict[str, Any], ignored: list[str]) -> Expiry:
    fields: dict[str, float] = {}
    for key, value in raw.items():
        if key in _EXPIRY:
            fields[_EXPIRY[key]] = _duration(f"expiry.{key}", value)
        elif key in FIXED_EXPIRY:
            if _duration(f"expiry.{key}", value) != FIXED_EXPIRY[key]:
                ignored.append(f"expiry.{key}")
        elif key == "refreshTokens":
            for sub, sub_value in _mapping("expiry.refreshTokens", value).items():
                if sub in _REFRESH:
                    fields[_REFRESH[sub]] = _duration(f"expiry.refreshTokens.{sub}", sub_value)
                else:
                    ignored.append(f"expiry.refreshTokens.{sub}")
        else:
            ignored.append(f"expiry.{key}")
    return Expiry(**fields)


def _duration(field: str, value: Any) -> float:
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None
