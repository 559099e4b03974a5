"""Kubeflow's Dex config files as kubeflow/manifests ships them, and the Dex rules they rely on
(Dex v2.44/v2.45 ``cmd/dex/config.go`` and ``cmd/dex/serve.go``)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from modelport.cli.identity import config_notes
from modelport.identity.db import make_engine, session_factory
from modelport.identity.dex_config import (
    FIXED_EXPIRY,
    ConfigError,
    DexConfig,
    load_dex_config,
    parse_dex_config,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "kubeflow"
# Kubeflow's Secrets for Dex: common/dex/base/secret_params.env and dex-passwords.yaml.
USER_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"  # "12341234"
KUBEFLOW_ENV = {
    "OIDC_CLIENT_ID": "kubeflow-oidc-authservice",
    "OIDC_CLIENT_SECRET": "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok",
    "DEX_USER_PASSWORD": USER_HASH,
}
# (file, git blob id upstream, the client's redirect URIs in that release)
RELEASES = [
    (
        "dex-config-map.v1.11.0.yaml",
        "a71484f3ebb065105af007b028fa9e0ff871c950",
        ["/oauth2/callback"],
    ),
    (
        "dex-config-map.v1.8.1.yaml",
        "e2cf9edac87932da450f5ac16ad843c1937492ce",
        ["/authservice/oidc/callback"],
    ),
]
CLIENT = {"id": "c", "secret": "s", "redirectURIs": ["/cb"]}
PASSWORD = {"email": "u@example.com", "hash": USER_HASH}


@pytest.mark.parametrize(("name", "blob", "redirects"), RELEASES)
def test_vectors_are_the_upstream_files(name: str, blob: str, redirects: list[str]):
    # The leading comment lines name the source; the rest must be upstream's blob, byte for
    # byte (upstream's file starts with apiVersion).
    lines = (VECTORS / name).read_bytes().splitlines(True)
    header = next(i for i, line in enumerate(lines) if not line.startswith(b"#"))
    assert header > 0 and lines[header].startswith(b"apiVersion: v1")
    body = b"".join(lines[header:])
    assert hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest() == blob


@pytest.mark.parametrize(("name", "blob", "redirects"), RELEASES)
def test_kubeflow_configmap_loads_with_kubeflow_environment(
    name: str, blob: str, redirects: list[str]
):
    cfg = load_dex_config(VECTORS / name, env=KUBEFLOW_ENV)
    assert cfg.container == "ConfigMap dex"
    assert cfg.issuer == "http://dex.auth.svc.cluster.local:5556/dex"
    (user,) = cfg.static_passwords
    assert (user.email, user.username, user.user_id, user.hash) == (
        "user@example.com",
        "user",
        "15841185641784",
        USER_HASH,
    )
    (client,) = cfg.static_clients
    assert (client.id, client.secret, client.name) == (
        "kubeflow-oidc-authservice",
        KUBEFLOW_ENV["OIDC_CLIENT_SECRET"],
        "Dex Login Application",
    )
    assert client.redirect_uris == redirects
    assert cfg.skip_approval_screen is True
    assert cfg.ignored == ["logger", "storage", "web"]


def test_environment_is_read_only_from_the_mapping_given(monkeypatch: pytest.MonkeyPatch):
    # The CLI passes the process environment; nothing below it reads os.environ.
    for key, value in KUBEFLOW_ENV.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="is not set"):
        load_dex_config(VECTORS / RELEASES[0][0])


@pytest.mark.parametrize(
    ("entry", "env", "fragment"),
    [
        ({**CLIENT, "idEnv": "CID"}, {"CID": "x"}, "staticClients[0]: id and idEnv are exclusive"),
        (
            {"idEnv": "CID", "secret": "s", "secretEnv": "SEC"},
            {"CID": "x", "SEC": "y"},
            "staticClients[0]: secret and secretEnv are exclusive",
        ),
        ({"secret": "s"}, {}, "staticClients[0]: id or idEnv is required"),
        ({"idEnv": "CID", "secret": "s"}, {"CID": ""}, "staticClients[0].idEnv: variable CID"),
        ({"id": "c", "secretEnv": "SEC"}, {}, "staticClients[0].secretEnv: variable SEC"),
        ({"id": "c", "idEnv": 5, "secret": "s"}, {}, "exclusive"),
        ({"idEnv": ["x"], "secret": "s"}, {}, "idEnv must name an environment variable"),
    ],
)
def test_dex_client_rules(entry: dict, env: dict, fragment: str):
    with pytest.raises(ConfigError) as err:
        parse_dex_config({"staticClients": [entry]}, env=env)
    assert fragment in str(err.value)


def test_client_from_environment_and_public_clients():
    cfg = parse_dex_config(
        {
            "staticClients": [
                {"idEnv": "CID", "secretEnv": "SEC", "redirectURIs": ["/cb"]},
                {"id": "cli", "public": True},
            ]
        },
        env={"CID": "from-env", "SEC": "shh"},
    )
    assert [(c.id, c.secret) for c in cfg.static_clients] == [("from-env", "shh"), ("cli", None)]


def test_hash_wins_over_hash_from_env_and_legacy_base64_is_decoded():
    # Dex reads hashFromEnv only when hash is empty, and accepts base64 of a bcrypt hash.
    legacy = base64.b64encode(USER_HASH.encode()).decode()
    cfg = parse_dex_config(
        {
            "staticPasswords": [
                {**PASSWORD, "hashFromEnv": "NOT_SET_ANYWHERE"},
                {"email": "v@example.com", "hash": legacy},
                {"email": "w@example.com", "hashFromEnv": "LEGACY"},
            ]
        },
        env={"LEGACY": legacy},
    )
    assert [p.hash for p in cfg.static_passwords] == [USER_HASH] * 3


@pytest.mark.parametrize(
    ("entry", "env", "fragment"),
    [
        ({"email": "u@example.com"}, {}, "staticPasswords[0]: no password hash provided"),
        (
            {"email": "u@example.com", "hashFromEnv": "PW"},
            {"PW": "12341234"},
            "staticPasswords[0].hashFromEnv: not a bcrypt hash",
        ),
        ({"email": "u@example.com", "hash": "$2y$12$short"}, {}, ".hash: not a bcrypt hash"),
        ({"email": "u@example.com", "hash": USER_HASH[:-1] + "!"}, {}, "not a bcrypt hash"),
        ({"email": "u@example.com", "hash": "$2y$99" + USER_HASH[6:]}, {}, "not a bcrypt hash"),
    ],
)
def test_unusable_hashes_are_refused_without_quoting_them(entry: dict, env: dict, fragment: str):
    with pytest.raises(ConfigError) as err:
        parse_dex_config({"staticPasswords": [entry]}, env=env)
    assert fragment in str(err.value)
    assert "12341234" not in str(err.value) and "short" not in str(err.value)


def test_every_key_not_acted_on_is_reported_by_path():
    cfg = parse_dex_config(
        {
            "issuer": "http://x/dex",
            "connectors": [{"type": "github", "id": "github"}],
            "frontend": {"theme": "dark"},
            "enablePasswordDB": True,
            "oauth2": {
                "skipApprovalScreen": False,
                "passwordConnector": "local",
                "responseTypes": ["code", "token"],
                "alwaysShowLoginScreen": True,
            },
            "expiry": {
                "idTokens": "1h",
                "authRequests": "24h",
                "deviceRequests": "10m",
                "refreshTokens": {"absoluteLifetime": "720h", "reuseInterval": "3s"},
            },
            "staticPasswords": [{**PASSWORD, "preferredUsername": "u", "groups": ["g"]}],
            "staticClients": [{**CLIENT, "logoURL": "http://x/logo.png"}],
        }
    )
    assert cfg.ignored == [
        "connectors",
        "expiry.deviceRequests",
        "expiry.refreshTokens.reuseInterval",
        "frontend",
        "oauth2.alwaysShowLoginScreen",
        "oauth2.responseTypes",
        "staticClients[0].logoURL",
        "staticPasswords[0].preferredUsername",
    ]
    assert cfg.expiry.id_tokens == 3600 and cfg.expiry.refresh_absolute_lifetime == 720 * 3600
    assert cfg.static_passwords[0].groups == ["g"]


def test_password_connector_other_than_local_is_reported():
    cfg = parse_dex_config({"oauth2": {"passwordConnector": "ldap"}})
    assert cfg.ignored == ["oauth2.passwordConnector"]


def test_password_db_switched_off():
    # Dex's Config.Validate refuses static passwords without the password DB.
    with pytest.raises(ConfigError, match="without enabling password db"):
        parse_dex_config({"enablePasswordDB": False, "staticPasswords": [PASSWORD]})
    # modelport's own users still log in, so the switch itself is not acted on.
    assert parse_dex_config({"enablePasswordDB": False}).ignored == ["enablePasswordDB"]


def test_fixed_lifetimes_are_the_ones_in_force():
    from modelport.identity.oauth2.device import DEVICE_TTL_S
    from modelport.identity.provider import AUTH_REQUEST_TTL_S

    assert FIXED_EXPIRY == {"authRequests": AUTH_REQUEST_TTL_S, "deviceRequests": DEVICE_TTL_S}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dex}\ndata: {other.yaml: x}\n",
            "ConfigMap dex has no data.config.yaml",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dex}\ndata:\n"
            '  config.yaml: |\n    staticClients:\n    - secret: "hunter2-secret\n',
            "ConfigMap dex data.config.yaml is not valid YAML",
        ),
        ('staticClients:\n- id: c\n  secret: "hunter2-secret\n', "not valid YAML"),
        ("oauth2:\n  skipApprovalScreen: 'yes'\n", "skipApprovalScreen must be true or false"),
        ("issuer: [a]\n", "issuer must be a URL"),
        ("staticClients:\n- just-a-string\n", "staticClients[0] must be a mapping"),
    ],
)
def test_unusable_files_name_the_place_but_quote_nothing(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "dex.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_dex_config(path)
    assert fragment in str(err.value)
    assert "hunter2" not in str(err.value)


def test_start_up_notes():
    cfg = load_dex_config(VECTORS / RELEASES[0][0], env=KUBEFLOW_ENV)
    notes = config_notes(cfg, "http://127.0.0.1:8000/dex", keep_issuer="start with --x")
    assert notes == [
        "read the Dex config held in ConfigMap dex",
        "the config's issuer http://dex.auth.svc.cluster.local:5556/dex is not used: the issuer "
        "is http://127.0.0.1:8000/dex (to keep the config's, start with --x)",
        "config keys not acted on: logger, storage, web",
    ]
    same = config_notes(cfg, "http://dex.auth.svc.cluster.local:5556/dex/", keep_issuer="")
    assert not any("issuer" in n for n in same)
    assert config_notes(DexConfig(), "http://h/dex", keep_issuer="") == []


def test_gateway_callbacks_can_be_added_to_the_configured_client(tmp_path: Path):
    from modelport.identity.provider import Provider

    cfg = load_dex_config(VECTORS / RELEASES[0][0], env=KUBEFLOW_ENV)
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/id.db"))
    provider = Provider.create("http://127.0.0.1:8000/dex", sessions, cfg)

    def allowed(uri: str) -> bool:
        client = provider.directory.get_client("kubeflow-oidc-authservice")
        assert client is not None
        return provider.redirect_allowed(client, uri)

    # Dex matches exactly: Kubeflow's file allows oauth2-proxy's callback only.
    assert allowed("/oauth2/callback") and not allowed("/login/oidc")
    provider.allow_redirects("kubeflow-oidc-authservice", ["/login/oidc", "/oauth2/callback"])
    assert allowed("/login/oidc") and allowed("/oauth2/callback")
    assert not allowed("/authservice/oidc/callback")
    client = provider.directory.get_client("kubeflow-oidc-authservice")
    assert client is not None and client.redirect_uris == ["/oauth2/callback", "/login/oidc"]
    assert provider.directory.client_secret_ok(client, KUBEFLOW_ENV["OIDC_CLIENT_SECRET"])
    with pytest.raises(ValueError, match="no client"):
        provider.allow_redirects("nobody", ["/x"])
    # The file decides again at the next start.
    Provider.create("http://127.0.0.1:8000/dex", sessions, cfg)
    assert not allowed("/login/oidc")
