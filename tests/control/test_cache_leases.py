"""The controller holds each revision's models in the cache while it may start replicas
from them, and lets the cache prune them once the service is gone."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from modelport.control.storage import Storage
from modelport.control.store import ISVC
from tests.control.rig import Rig, isvc, run

KB = 1000


def archive(folder: Path, name: str, size: int) -> Path:
    path = folder / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = size
        tar.addfile(info, io.BytesIO(b"m" * size))
    return path


def test_a_served_model_stays_cached_and_is_pruned_once_its_service_is_gone(
    tmp_path: Path,
) -> None:
    served = archive(tmp_path, "served", 100 * KB)
    other = archive(tmp_path, "other", 100 * KB)
    third = archive(tmp_path, "third", 100 * KB)

    async def scenario(rig: Rig) -> None:
        storage = Storage(tmp_path / "small-cache", tmp_path / "volumes", max_cache_bytes=150 * KB)
        rig.controller.storage = storage
        rig.controller.scaler.fetcher.storage = storage
        rig.apply(isvc(served))
        await rig.until(lambda: bool(rig.svc and rig.svc.revisions))
        rev = next(iter(rig.svc.revisions.values()))  # type: ignore[union-attr]
        await rig.until(lambda: rev.predictor_path is not None)
        entry = rev.predictor_path
        assert entry is not None and entry.is_relative_to(tmp_path / "small-cache")
        # Over the limit twice over: what is not held goes, the revision's model stays.
        storage.checkout(str(other), namespace="default").release()
        storage.checkout(str(third), namespace="default").release()
        assert (entry / "model.joblib").is_file()
        rig.store.delete(ISVC, "default", "iris")
        await rig.until(lambda: rig.svc is None and not rev.model_leases)
        storage.checkout(str(other), namespace="default").release()
        assert not entry.exists()

    run(tmp_path, scenario)
