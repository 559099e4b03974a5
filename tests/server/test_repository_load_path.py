"""The repository extension's load with a path (what TrainedModels use): the model there is
served under its own name, in the server's format; unloading forgets it; bad bodies are 400s
in words; the server's own model cannot be replaced by a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.errors import InvalidInput, ModelLoadError, ModelNotFound
from modelport.server.entry import ModelFile
from modelport.server.repository import READY, ModelRepository
from modelport.server.rest import _load_path

SETOSA = [[5.1, 3.5, 1.4, 0.2]]


def _repo(iris_dir: Path) -> ModelRepository:
    repo = ModelRepository()
    repo.add_factory("iris", ModelFile("iris", str(iris_dir), "sklearn", False, 1))
    repo.load("iris")
    return repo


def test_load_by_path_serves_a_second_model_and_unload_forgets_it(iris_dir: Path) -> None:
    repo = _repo(iris_dir)
    entry = repo.load("extra", str(iris_dir))
    assert entry.state == READY and entry.model is not None
    assert entry.model.name == "extra"
    assert list(entry.model.predict({"instances": SETOSA})["predictions"]) == [0]
    assert sorted(e.name for e in repo.entries()) == ["extra", "iris"]
    repo.unload("extra")
    with pytest.raises(ModelNotFound):
        repo.get("extra")
    assert repo.get("iris").state == READY


def test_a_path_cannot_replace_the_servers_own_model(iris_dir: Path, tmp_path: Path) -> None:
    repo = _repo(iris_dir)
    with pytest.raises(ModelLoadError, match="own model"):
        repo.load("iris", str(tmp_path))
    assert repo.get("iris").state == READY


def test_a_missing_model_fails_to_load_and_stays_unavailable(iris_dir: Path, tmp_path: Path):
    repo = _repo(iris_dir)
    with pytest.raises(ModelLoadError):
        repo.load("ghost", str(tmp_path / "nothing"))
    assert repo.get("ghost").state != READY


def test_load_bodies() -> None:
    assert _load_path(b"") is None
    assert _load_path(b'{"parameters": {}}') is None
    assert _load_path(b'{"parameters": {"path": "/m/x"}}') == "/m/x"
    for bad in (b"[1]", b"{", b'{"parameters": 3}', b'{"parameters": {"path": "rel"}}'):
        with pytest.raises(InvalidInput):
            _load_path(bad)
