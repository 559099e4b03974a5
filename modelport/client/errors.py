"""Errors of the client side (no heavy imports: the CLI's fast paths use them)."""


class LoginError(Exception):
    """Logging in or refreshing failed; the message says why (never echoes secrets)."""
