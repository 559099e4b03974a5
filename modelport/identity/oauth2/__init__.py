"""OAuth 2.0 endpoints (RFC 6749 with PKCE, RFC 7636) in Dex's dialect."""
