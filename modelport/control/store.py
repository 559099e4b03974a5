"""Desired and observed state of the control plane, in SQL (SQLite by default; any
SQLAlchemy URL, PostgreSQL included).

``resources`` holds what users applied (InferenceServices and ServingRuntimes, kept as the
documents they sent, so ``get -o yaml`` gives them back); ``revisions`` holds every
revision made from an InferenceService spec, which survives restarts of the platform so
traffic splits and revision names stay stable.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    Integer,
    String,
    UniqueConstraint,
    delete,
    event,
    select,
)
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from modelport.db import make_engine

ISVC = "InferenceService"
RUNTIME = "ServingRuntime"
CLUSTER_RUNTIME = "ClusterServingRuntime"


class Base(DeclarativeBase):
    """Declarative base of the control-plane tables."""


class Resource(Base):
    """One applied object; ``namespace`` is empty for cluster-scoped kinds."""

    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("kind", "namespace", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(63), default="")
    name: Mapped[str] = mapped_column(String(253))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Bumped on every change of the document, as metadata.generation on Kubernetes.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)
    applied_by: Mapped[str] = mapped_column(String(320), default="")


class Revision(Base):
    """An immutable snapshot of an InferenceService spec that ran (or tried to)."""

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("namespace", "service", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(253))
    number: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    # "pending" until a replica answered ready once, then "ready"; "failed" if it never could.
    state: Mapped[str] = mapped_column(String(16), default="pending")
    message: Mapped[str] = mapped_column(String(2000), default="")
    # The revision that served 100 % before this one was created (the canary's baseline).
    previous: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[int] = mapped_column(Integer, default=0)
    # Set once it carried all traffic: later revisions fall back to the newest promoted one.
    promoted: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Applied:
    """What ``apply`` did with one object."""

    kind: str
    namespace: str
    name: str
    action: str  # "created", "configured" or "unchanged"


class Store:
    """Short transactions over the control-plane tables; safe to call from any thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating if needed) the store at a SQLAlchemy URL."""
        return cls(make_engine(url, Base.metadata))

    def session(self) -> Session:
        return self._session()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every commit through this store (in-process caches, such
        as the InferenceGraph catalog, reload on it). It runs in the committing thread."""
        event.listen(self._session, "after_commit", lambda _session: callback())

    # ---- applied objects ----------------------------------------------------------------

    def apply(
        self, kind: str, namespace: str, name: str, document: dict[str, Any], by: str = ""
    ) -> Applied:
        with self.session() as s, s.begin():
            row = s.scalars(
                select(Resource).where(
                    Resource.kind == kind, Resource.namespace == namespace, Resource.name == name
                )
            ).first()
            now = time.time()
            if row is None:
                s.add(
                    Resource(
                        kind=kind,
                        namespace=namespace,
                        name=name,
                        document=document,
                        created_at=now,
                        updated_at=now,
                        applied_by=by,
                    )
                )
                return Applied(kind, namespace, name, "created")
            if row.document == document:
                return Applied(kind, namespace, name, "unchanged")
            row.document = document
            row.generation += 1
            row.updated_at = now
            row.applied_by = by or row.applied_by
            return Applied(kind, namespace, name, "configured")

    def get(self, kind: str, namespace: str, name: str) -> Resource | None:
        with self.session() as s:
            return s.scalars(
                select(Resource).where(
                    Resource.kind == kind, Resource.namespace == namespace, Resource.name == name
                )
            ).first()

    def list(self, kind: str, namespace: str | None = None) -> list[Resource]:
        """Objects of a kind, in one namespace or (None) all, ordered by namespace and name."""
        query = select(Resource).where(Resource.kind == kind)
        if namespace is not None:
            query = query.where(Resource.namespace == namespace)
        with self.session() as s:
            return list(s.scalars(query.order_by(Resource.namespace, Resource.name)))

    def versions(self, kind: str) -> dict[tuple[str, str], tuple[int, float]]:
        """(namespace, name) -> (generation, created_at) of every object of a kind: what the
        controller polls, without loading documents."""
        query = select(Resource.namespace, Resource.name, Resource.generation, Resource.created_at)
        with self.session() as s:
            rows = s.execute(query.where(Resource.kind == kind)).all()
        return {(ns, name): (gen, created) for ns, name, gen, created in rows}

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        with self.session() as s, s.begin():
            removed = s.execute(
                delete(Resource).where(
                    Resource.kind == kind, Resource.namespace == namespace, Resource.name == name
                )
            )
            # A DELETE answers a CursorResult, the kind of result that counts rows.
            gone = removed.rowcount if isinstance(removed, CursorResult) else 0
            if kind == ISVC:
                s.execute(
                    delete(Revision).where(
                        Revision.namespace == namespace, Revision.service == name
                    )
                )
            return bool(gone)

    # ---- revisions ----------------------------------------------------------------------

    def revisions(self, namespace: str, service: str) -> builtins.list[Revision]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(Revision)
                    .where(Revision.namespace == namespace, Revision.service == service)
                    .order_by(Revision.number)
                )
            )

    def all_revisions(self) -> builtins.list[Revision]:
        with self.session() as s:
            return list(s.scalars(select(Revision).order_by(Revision.id)))

    def add_revision(
        self, namespace: str, service: str, key: str, document: dict[str, Any], previous: int
    ) -> Revision:
        with self.session() as s, s.begin():
            last = s.scalars(
                select(Revision.number)
                .where(Revision.namespace == namespace, Revision.service == service)
                .order_by(Revision.number.desc())
            ).first()
            row = Revision(
                namespace=namespace,
                service=service,
                number=(last or 0) + 1,
                key=key,
                document=document,
                created_at=time.time(),
                previous=previous,
            )
            s.add(row)
        return row

    def update_revision(self, revision_id: int, **values: Any) -> None:
        with self.session() as s, s.begin():
            row = s.get(Revision, revision_id)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)
