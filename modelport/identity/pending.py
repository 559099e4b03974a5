"""A bound on the pending rows (auth requests, device requests) anyone can make a client keep.

Every anonymous ``/auth`` or ``/device/code`` request stores a row (Dex keeps them 24 h and
5 min, unbounded). Past a client's bound the oldest rows go, rather than new ones being
refused: refusing would let a few thousand requests a day, from anywhere, keep everyone from
logging in to that client until the rows expired, while dropping the oldest costs only a
login that sat unfinished while ``limit`` newer ones arrived (a sustained flood, and the
person simply starts again). Expired rows are purged separately, once a minute on insert.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelport.identity.db import AuthRequest, DeviceCode

Pending = type[AuthRequest] | type[DeviceCode]


def keep_newest(db: Session, model: Pending, client_id: str, limit: int) -> int:
    """Delete the client's pending rows beyond the ``limit`` newest; returns how many went.

    Counting walks the (client_id, expires_at) index: ~0.2 ms at 10,000 rows in SQLite.
    """
    count = db.scalar(select(func.count()).select_from(model).where(model.client_id == client_id))
    excess = (count or 0) - limit
    if excess <= 0:
        return 0
    key = model.__mapper__.primary_key[0]
    oldest = (
        select(key).where(model.client_id == client_id).order_by(model.expires_at).limit(excess)
    )
    db.execute(
        delete(model)
        .where(key.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return excess
