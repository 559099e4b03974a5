"""The models one worker serves, with their load state (OIP model repository extension)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.errors import ModelLoadError, ModelNotFound
from modelport.model import Model

if TYPE_CHECKING:
    from prometheus_client import Gauge

    from modelport.server.batching import Batcher

log = logging.getLogger("modelport.server")

Factory = Callable[[], Model]
#: what a server is given to serve: a model, or a factory that makes one
ModelSource = Model | Factory


@dataclass(frozen=True)
class LoadedModel:
    """A model made by its factory and loaded; the factory is kept to make it again."""

    model: Model
    factory: Factory


def load_models(sources: Sequence[ModelSource | LoadedModel]) -> list[Model | LoadedModel]:
    """Call every factory and load what it makes; models and loaded models pass through."""
    loaded: list[Model | LoadedModel] = []
    for source in sources:
        if isinstance(source, Model | LoadedModel):
            loaded.append(source)
            continue
        model = source()
        if not model.ready:
            model.load()
        loaded.append(LoadedModel(model, source))
    return loaded


READY = "READY"
UNAVAILABLE = "UNAVAILABLE"
LOADING = "LOADING"


@dataclass
class Entry:
    """One named model: the live instance (if loaded) and how to make it again."""

    name: str
    model: Model | None = None
    factory: Factory | None = None
    state: str = UNAVAILABLE
    reason: str = ""
    inflight: int = 0
    # Set up by the data plane for a loaded model (dataplane.DataPlane._prepare).
    inflight_gauge: Gauge | None = None
    batcher: Batcher | None = None
    # Loaded by path through the repository extension (a TrainedModel): unloading it
    # forgets it, as KServe's ModelRepository.unload does, instead of listing it unavailable.
    by_path: bool = False


class ModelRepository:
    """Name → model table with load/unload, as the OIP repository extension exposes it."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def add(self, model: Model, factory: Factory | None = None) -> Entry:
        """Register an already constructed model."""
        entry = Entry(model.name, model, factory, READY if model.ready else UNAVAILABLE)
        self._entries[model.name] = entry
        return entry

    def add_factory(self, name: str, factory: Factory) -> Entry:
        """Register a model that is loaded later, by ``load``."""
        entry = Entry(name, None, factory)
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> Entry:
        """The entry for ``name``, or ModelNotFound."""
        entry = self._entries.get(name)
        if entry is None:
            raise ModelNotFound(name)
        return entry

    def entries(self) -> list[Entry]:
        """Every registered model."""
        return list(self._entries.values())

    def load(self, name: str, path: str | None = None) -> Entry:
        """(Re)load a model from its factory; on failure it stays registered and unavailable.
        With ``path``, the model there is (re)registered as ``name`` first, read in the same
        format as the model this server was started with."""
        if path is not None:
            self._register_path(name, path)
        entry = self.get(name)
        if entry.factory is None:
            if entry.model is not None:
                entry.model.load()
                entry.state = READY if entry.model.ready else UNAVAILABLE
                return entry
            raise ModelLoadError(f"Model {name} has no source to load it from.")
        entry.state = LOADING
        try:
            model = entry.factory()
            if not model.ready:
                model.load()
        except Exception as exc:
            entry.state = UNAVAILABLE
            entry.reason = str(exc)
            log.error("loading model %s failed: %s", name, exc)
            raise ModelLoadError(f"Loading model {name} failed: {exc}") from exc
        entry.model = model
        entry.state = READY if model.ready else UNAVAILABLE
        entry.reason = ""
        return entry

    def unload(self, name: str) -> Entry:
        """Unload a model; it stays listed (UNAVAILABLE) so it can be loaded again, unless it
        was loaded by path (then it is gone)."""
        entry = self.get(name)
        if entry.model is not None:
            entry.model.unload()
            entry.model.ready = False
            if entry.factory is not None:
                entry.model = None
        entry.state = UNAVAILABLE
        entry.reason = "unloaded"
        if entry.by_path:
            del self._entries[name]
        return entry

    def _register_path(self, name: str, path: str) -> None:
        """``name`` made by a copy of a file-backed factory of this server (server/entry.py
        ModelFile: a frozen dataclass with ``model_name`` and ``path``) pointed at ``path``."""
        template = next(
            (e.factory for e in self._entries.values() if _path_factory(e.factory)), None
        )
        if template is None:
            raise ModelLoadError(
                f"Model {name}: this server was not started from a model file, so it cannot "
                "load another one by path."
            )
        factory: Factory = dataclasses.replace(template, model_name=name, path=path)  # type: ignore[type-var]
        entry = self._entries.get(name)
        if entry is None:
            entry = self.add_factory(name, factory)
            entry.by_path = True
        elif entry.by_path:
            entry.factory = factory
        else:
            # The server's own model keeps its source; a path cannot replace it.
            raise ModelLoadError(f"Model {name} is this server's own model; it loads by name.")


def _path_factory(factory: Any) -> bool:
    return (
        dataclasses.is_dataclass(factory)
        and not isinstance(factory, type)
        and hasattr(factory, "model_name")
        and hasattr(factory, "path")
    )
