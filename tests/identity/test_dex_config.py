"""Dex configuration files load as-is, with errors that name the field."""

from __future__ import annotations

import pytest

from modelport.identity.dex_config import ConfigError, load_dex_config, parse_duration

KUBEFLOW_STYLE = """
issuer: http://dex.auth.svc.cluster.local:5556/dex
storage:
  type: kubernetes
  config:
    inCluster: true
web:
  http: 0.0.0.0:5556
logger:
  level: "debug"
  format: text
oauth2:
  skipApprovalScreen: true
enablePasswordDB: true
staticPasswords:
- email: user@example.com
  hash: $2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72
  username: user
  userID: "15841185641784"
staticClients:
- idEnv: OIDC_CLIENT_ID
  redirectURIs: ["/login/oidc"]
  name: 'Dex Login Application'
  secretEnv: OIDC_CLIENT_SECRET
expiry:
  idTokens: 24h
  refreshTokens:
    validIfNotUsedFor: 2160h
"""


def test_kubeflow_dex_config_loads(tmp_path):
    env = {
        "OIDC_CLIENT_ID": "kubeflow-oidc-authservice",
        "OIDC_CLIENT_SECRET": "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok",
    }
    path = tmp_path / "dex.yaml"
    path.write_text(KUBEFLOW_STYLE)
    cfg = load_dex_config(path, env=env)
    assert cfg.issuer == "http://dex.auth.svc.cluster.local:5556/dex"
    (user,) = cfg.static_passwords
    assert (user.email, user.username, user.user_id) == (
        "user@example.com",
        "user",
        "15841185641784",
    )
    (client,) = cfg.static_clients
    assert client.id == "kubeflow-oidc-authservice"
    assert client.secret == "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"
    assert client.redirect_uris == ["/login/oidc"]
    assert cfg.skip_approval_screen
    assert cfg.expiry.id_tokens == 24 * 3600
    assert cfg.expiry.refresh_valid_if_not_used_for == 2160 * 3600
    assert cfg.ignored == ["logger", "storage", "web"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("staticPasswords:\n- email: a@b.c\n  hash: plaintext\n", "bcrypt hash"),
        (
            "staticPasswords:\n- email: a@b.c\n  hashFromEnv: NOT_SET_ANYWHERE_43\n",
            "NOT_SET_ANYWHERE_43",
        ),
        ("staticPasswords:\n- hash: $2a$10$x\n", "staticPasswords[0].email"),
        ("staticClients:\n- id: c\n", "needs a secret"),
        ("staticClients:\n- id: c\n  secretEnv: NOT_SET_ANYWHERE_42\n", "NOT_SET_ANYWHERE_42"),
        ("expiry:\n  idTokens: forever\n", "expiry.idTokens"),
        ("staticClients: 5\n", "must be a list"),
        ("- just\n- a list\n", "must be a mapping"),
        ("key: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_configs_name_the_field(tmp_path, text, fragment):
    path = tmp_path / "dex.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_dex_config(path)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("500ms", 0.5)],
)
def test_go_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "h", "1d", "1h 30m", "-5m"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_hash_from_env():
    from modelport.identity.dex_config import parse_dex_config

    env = {"DEX_USER_PASSWORD": "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"}
    cfg = parse_dex_config(
        {"staticPasswords": [{"email": "u@example.com", "hashFromEnv": "DEX_USER_PASSWORD"}]},
        env=env,
    )
    assert cfg.static_passwords[0].hash == env["DEX_USER_PASSWORD"]
