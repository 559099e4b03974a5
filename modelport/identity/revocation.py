"""What a user was granted ends when the user is deleted or their password changes.

Refresh tokens (this provider's offline sessions) are revoked and one-time grants in flight
(codes, logged-in auth requests, approved device logins) deleted, in the same transaction as
the change. Signed tokens cannot be recalled, so each user has a cutoff, ``tokens_valid_after``:
a JWT of a local user issued before it, or of a user who no longer exists, fails verification
(``TokenIssuer.verify``), and so does a gateway session created before it
(``modelport.gateway.sessions``). ``iat`` has whole seconds (as Dex's), so a token issued in
the very second of the change is refused too: logging in again a second later works.
"""

from __future__ import annotations

import math

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from modelport.identity.db import AuthCode, AuthRequest, DeviceCode, RefreshToken, User
from modelport.identity.tokens import LOCAL_CONNECTOR, decode_subject


def end_grants(db: Session, user_id: str, *, deleted: bool) -> None:
    """Revoke the user's refresh tokens (delete them with the user) and grants in flight."""
    tokens = RefreshToken.user_id == user_id
    if deleted:
        db.execute(delete(RefreshToken).where(tokens))
    else:
        db.execute(update(RefreshToken).where(tokens).values(revoked=True))
    db.execute(delete(AuthCode).where(AuthCode.user_id == user_id))
    db.execute(delete(AuthRequest).where(AuthRequest.user_id == user_id))
    db.execute(delete(DeviceCode).where(DeviceCode.user_id == user_id))


def cut_off(db: Session, user: User, now: float) -> None:
    """Make everything issued to ``user`` until ``now`` invalid (password changed)."""
    user.tokens_valid_after = now
    end_grants(db, user.user_id, deleted=False)


def issued_too_early(issued_at: float, valid_after: float, *, whole_seconds: bool = False) -> bool:
    """Whether something issued at ``issued_at`` predates the cutoff ``valid_after``.

    A ``whole_seconds`` time (a JWT's ``iat``) cannot say on which side of a change within
    that second it was issued, so the cutoff's whole second is refused.
    """
    if not valid_after:
        return False
    if whole_seconds:
        return issued_at <= math.floor(valid_after)
    return issued_at < valid_after


class TokenCutoffs:
    """Answers ``TokenIssuer``'s question: was this local user's token revoked?"""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def revoked(self, claims: dict[str, object]) -> bool:
        """True for a token of a deleted local user, or one issued before the user's cutoff.

        Tokens of other subjects (service accounts, ``client:ID``) are not users' and pass.
        """
        sub, iat = claims.get("sub"), claims.get("iat")
        try:
            user_id, connector = decode_subject(sub) if isinstance(sub, str) else ("", "")
        except ValueError:
            return False
        if connector != LOCAL_CONNECTOR:
            return False
        with self._sessions() as db:
            valid_after = db.scalar(select(User.tokens_valid_after).where(User.user_id == user_id))
        if valid_after is None:
            return True
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            return True  # a local user's token always has iat: this one is not ours
        return issued_too_early(iat, valid_after, whole_seconds=True)
