"""Who a verified Bearer token speaks for, or why the gateway does not accept it.

A signature says only who issued a token, not for whom. Every client registered with the
provider (a third-party app in the Dex config) receives its users' tokens; were those
accepted here, the app could replay them at the gateway as those users. So, as
oidc-authservice's go-oidc verifier with its ``ClientID`` does, a user's token must name
one of the gateway's own clients in ``aud`` (OIDC Core §3.1.3.7 step 3): by default the
gateway's client and the CLI's (``modelport login``), plus any client that asked Dex for a
cross-client audience the gateway's client trusts (``trustedPeers``).

A service account's token (``client_credentials``) names its own client as the audience
and speaks only for that client, ``client:ID``; namespaces must grant that name.

Tokens of trusted external issuers (verified for their audience by ``trusted.py``) speak
for an email only if the issuer vouches for it: ``email_verified`` must be JSON ``true``
(OIDC Core §5.1), otherwise anyone who can register an unverified address at that issuer
could claim someone else's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from modelport.access.caller import Identity
from modelport.identity.oauth2.token import CLIENT_CONNECTOR
from modelport.identity.tokens import decode_subject

NO_EMAIL = "Bearer token has no email claim (request the email scope)."
OTHER_AUDIENCE = "Bearer token was issued for another application; this gateway does not accept it."
UNVERIFIED = "The issuer has not verified this token's email (email_verified is not true)."


def local_identity(
    claims: dict[str, Any], *, audiences: Collection[str], is_client: Callable[[str], bool]
) -> Identity | str:
    """The identity of a token our provider signed, or why it is refused."""
    client = _service_account(claims)
    if client is not None:
        if not is_client(client):
            return "Bearer token belongs to a client that no longer exists."
        return Identity(f"client:{client}")
    aud = claims.get("aud")
    named = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a in audiences for a in named):
        return OTHER_AUDIENCE
    return _user(claims)


def external_identity(claims: dict[str, Any]) -> Identity | str:
    """The identity of a token a trusted external issuer signed, or why it is refused."""
    if claims.get("email_verified") is not True:
        return UNVERIFIED
    return _user(claims)


def _user(claims: dict[str, Any]) -> Identity | str:
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        return NO_EMAIL
    groups = claims.get("groups")
    if not isinstance(groups, list):
        groups = []  # a bare string is not a list of one-letter groups
    return Identity(email, tuple(g for g in groups if isinstance(g, str)))


def _service_account(claims: dict[str, Any]) -> str | None:
    """The client id of a client_credentials token (as token.py mints them), else None."""
    client = claims.get("client_id")
    if not isinstance(client, str) or not client or "email" in claims:
        return None
    if claims.get("aud") not in (client, [client]):
        return None
    try:
        subject = decode_subject(str(claims.get("sub", "")))
    except ValueError:
        return None
    return client if subject == (client, CLIENT_CONNECTOR) else None
