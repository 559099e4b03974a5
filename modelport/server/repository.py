"""The models one worker serves, with their load state (OIP model repository extension)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

    def load(self, name: str) -> Entry:
        """(Re)load a model from its factory; on failure it stays registered and unavailable."""
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
        """Unload a model; it stays listed (UNAVAILABLE) so it can be loaded again."""
        entry = self.get(name)
        if entry.model is not None:
            entry.model.unload()
            entry.model.ready = False
            if entry.factory is not None:
                entry.model = None
        entry.state = UNAVAILABLE
        entry.reason = "unloaded"
        return entry
