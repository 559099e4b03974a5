"""Kubeflow's Dex setup as the tests use it: its example user, the oidc-authservice client,
and a Dex config with both (plus a second user and the clients the tests need)."""

from __future__ import annotations

# Kubeflow's example user: user@example.com / 12341234 (bcrypt from its Dex config map).
USER_EMAIL = "user@example.com"
USER_PASSWORD = "12341234"
USER_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"
AUTHSERVICE_ID = "kubeflow-oidc-authservice"
AUTHSERVICE_SECRET = "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"
CLI_CLIENT_ID = "modelport-cli"

DEX_CONFIG = f"""
issuer: http://dex.auth.svc.cluster.local:5556/dex
storage:
  type: kubernetes
oauth2:
  skipApprovalScreen: true
enablePasswordDB: true
staticPasswords:
- email: {USER_EMAIL}
  hash: "{USER_HASH}"
  username: user
  userID: "15841185641784"
  groups: [team-a]
- email: second@example.com
  hash: "{USER_HASH}"
  username: second
  userID: "2"
staticClients:
- id: {AUTHSERVICE_ID}
  redirectURIs: ["/login/oidc", "/authservice/oidc/callback", "http://127.0.0.1/callback"]
  name: 'Dex Login Application'
  secret: {AUTHSERVICE_SECRET}
- id: approving-app
  redirectURIs: ["http://127.0.0.1/approve-cb"]
  secret: approving-secret
- id: {CLI_CLIENT_ID}
  name: modelport CLI
  public: true
"""

# The password grant's options (tests/helpers/login.py) for logging in as the gateway's own
# client, as oidc-authservice does in Kubeflow.
AS_AUTHSERVICE = {"client": AUTHSERVICE_ID, "secret": AUTHSERVICE_SECRET}
