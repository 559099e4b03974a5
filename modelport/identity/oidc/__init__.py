"""OpenID Connect endpoints: discovery, JWKS and userinfo (OIDC Core 1.0, Discovery 1.0)."""
