"""Identity: a Dex-compatible OpenID Connect provider (users, clients, keys, tokens).

Compatibility facts this package follows are collected in docs/compat/dex-authservice-facts.md.
"""
