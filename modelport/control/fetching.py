"""Getting a revision's model (and its transformer's) in place before a replica starts.

Downloads run in a thread, one per revision at a time, while the controller goes on; their
progress shows in the revision's status message (``describe``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from modelport.control.backends.isolation import Isolation
from modelport.control.revisions import RevisionState, ServiceState
from modelport.control.schedule import Background
from modelport.control.storage import ModelLease, Storage, StorageError

# Told when a fetch failed (with the error in words) and when one finished either way.
FetchFailed = Callable[[ServiceState, RevisionState, str], None]
FetchDone = Callable[[ServiceState], None]


class ModelFetcher:
    def __init__(
        self,
        storage: Storage,
        isolation: Isolation | None,
        background: Background,
        failed: FetchFailed,
        done: FetchDone,
    ) -> None:
        self.storage = storage
        self.isolation = isolation
        self.background = background
        self.failed = failed
        self.done = done

    def in_place(self, svc: ServiceState, rev: RevisionState) -> bool:
        """True when the revision's models are on disk; otherwise starts fetching them (once)
        and answers False — ``done`` is called when that ends."""
        if rev.predictor_path is not None:
            return True
        if not rev.fetching:
            rev.fetching = True
            self.background.run(self._fetch(svc, rev))
        return False

    async def _fetch(self, svc: ServiceState, rev: RevisionState) -> None:
        uris = [rev.isvc.predictor.storage_uri]
        if rev.isvc.transformer is not None:
            uris.append(rev.isvc.transformer.storage_uri)
        if rev.isvc.explainer is not None:
            uris.append(rev.isvc.explainer.storage_uri)
        leases: list[ModelLease] = []
        try:
            for uri in uris:
                assert uri is not None  # the spec parser requires a storageUri
                # Each namespace has its own part of the cache and its own volumes. The lease
                # keeps the model in the cache while this revision may start replicas.
                lease = await asyncio.to_thread(
                    self.storage.checkout, uri, _progress(rev, uri), namespace=svc.namespace
                )
                leases.append(lease)
            paths: list[Path] = [lease.path for lease in leases]
            if self.isolation is not None:
                readable = self.isolation.readable
                paths = [await asyncio.to_thread(readable, svc.namespace, p) for p in paths]
            rev.predictor_path = paths[0]
            rev.transformer_path = paths[1] if rev.isvc.transformer is not None else None
            rev.explainer_path = paths[-1] if rev.isvc.explainer is not None else None
            rev.model_leases, leases = leases, []
            rev.message = ""
        except StorageError as exc:
            self.failed(svc, rev, str(exc))
        finally:
            for lease in leases:  # only left when the fetch failed part way
                lease.release()
            rev.fetching = False
            self.done(svc)


def _progress(rev: RevisionState, uri: str) -> Callable[[int, int | None], None]:
    """Show a download's progress in the revision's status message."""

    def show(done: int, total: int | None) -> None:
        size = f"{done / 1e6:.1f}" + (f" of {total / 1e6:.1f}" if total else "")
        rev.message = f"downloading {uri}: {size} MB"

    return show
