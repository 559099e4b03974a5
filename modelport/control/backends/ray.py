"""The Ray backend (``modelport up --backend ray``): each replica is one detached, named
Ray actor (``ray_host.ReplicaHost``) in Ray namespace ``modelport``, placed by Ray with the
resources the predictor asks for, owning one model server process on its node. The
gateway sends requests straight to that process's ip:port with the replica's key; Ray is
never in the data path.

Actors outlive the platform: a restarted (or newly leading) platform starts the same
replica names, Ray hands back the running actors (``get_if_exists``), and each reports the
model server it already runs instead of starting another. Actors nobody claims within
``adopt_window_s`` of the start (services deleted meanwhile) are killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from modelport.control.backends.process import Replica, ReplicaSpec
from modelport.control.backends.ray_host import ReplicaHost
from modelport.control.backends.ray_models import pack, stat_signature
from modelport.control.backends.ray_replica import (
    RAY_NAMESPACE,
    RayReplica,
    actor_resources,
    kill_actor,
)

log = logging.getLogger("modelport.controller")

ADOPT_WINDOW_S = 120.0
# Packed models kept in Ray's object store between cold starts (bytes, at most).
SHIP_CACHE_BYTES = 4 << 30
# Threads in each actor: launch/stop, the exit watch and the log copy run at once.
ACTOR_THREADS = 4


class RayBackend:
    """Runs replicas as actors on a Ray cluster."""

    name = "ray"
    # Replicas keep running when the platform stops; the next start adopts them.
    keeps_replicas = True
    places_replicas = True

    def __init__(
        self,
        address: str | None = None,
        *,
        shared_dirs: tuple[Path, ...] = (),
        adopt_window_s: float = ADOPT_WINDOW_S,
    ):
        self.address = address
        # Models under these folders are at the same path on every node (a shared
        # filesystem, pvc://'s volumes); others are copied to each node that needs them.
        self.shared_dirs = tuple(p.resolve() for p in shared_dirs)
        self.adopt_window_s = adopt_window_s
        self._shipped: dict[str, tuple[Any, int]] = {}
        self._keys: dict[object, str] = {}
        self._host: Any = None
        self._claimed: set[str] = set()
        self._leftovers: set[str] = set()
        self._waiting: dict[str, dict[str, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.replicas: dict[str, RayReplica] = {}

    async def open(self) -> None:
        """Connect to the cluster (RuntimeError when it cannot) and note the replicas
        already running there, to adopt."""
        import ray

        try:
            ray.init(
                address=self.address or "auto",
                namespace=RAY_NAMESPACE,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RuntimeError(
                f"cannot connect to the Ray cluster at {self.address}: {exc}"
            ) from exc
        self._host = ray.remote(ReplicaHost)
        found = await asyncio.to_thread(ray.util.list_named_actors, all_namespaces=True)
        self._leftovers = {a["name"] for a in found if a.get("namespace") == RAY_NAMESPACE}
        if self._leftovers:
            log.info("ray: %d replica actors already run; adopting them", len(self._leftovers))
            self.spawn(self._sweep_leftovers())

    async def start(self, spec: ReplicaSpec) -> Replica:
        name = spec.replica_id or f"replica-{spec.key[:12]}"
        self._claimed.add(name)
        request = json.loads(spec.launch_request(0))
        if spec.confinement is not None:
            # Ray counts CPUs; the platform's own CPU numbers mean nothing on another node.
            # No outbound TCP but to its predictor (see ray_host.py for why).
            predictor_port = (
                (int(spec.predictor_host.rsplit(":", 1)[1]),) if spec.predictor_host else ()
            )
            request["confinement"] = dataclasses.asdict(
                dataclasses.replace(spec.confinement, cpus=(), connect_ports=predictor_port)
            )
        request["ship"] = (
            [await self._ship(spec.model_path)] if self._ships(spec.model_path) else []
        )
        handle = self._host.options(
            name=name,
            namespace=RAY_NAMESPACE,
            lifetime="detached",
            max_restarts=0,
            get_if_exists=True,
            max_concurrency=ACTOR_THREADS,
            **actor_resources(spec.placement),
        ).remote(name)
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        replica = RayReplica(self, handle, name, spec, request)
        self.replicas[name] = replica
        return replica

    async def close(self) -> None:
        """Stop watching; the actors keep running for the next start to adopt."""
        import ray

        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Object references die with the connection; a later open() starts afresh (a
        # platform that leads again after standing down opens its backend again).
        self._shipped.clear()
        self._waiting.clear()
        self.replicas.clear()
        await asyncio.to_thread(ray.shutdown)

    def _ships(self, model: Path) -> bool:
        model = model.resolve()
        return not any(model == d or d in model.parents for d in self.shared_dirs)

    async def _ship(self, model: Path) -> dict[str, Any]:
        """The model in Ray's object store (once per content), for nodes to copy: no node
        needs the platform's storage credentials, and each copies a model once."""
        import ray

        signature = await asyncio.to_thread(stat_signature, model)
        known = self._keys.get(signature)
        found = self._shipped.pop(known, None) if known is not None else None
        if found is None or known is None:
            # Named by the archive itself: what a node unpacks is exactly what was named.
            data, key = await asyncio.to_thread(pack, model)
            if len(self._keys) > 4096:
                self._keys.clear()  # packing again is the only cost
            self._keys[signature] = key
            found = self._shipped.pop(key, None) or (
                await asyncio.to_thread(ray.put, data),
                len(data),
            )
        else:
            key = known
        ref = found[0]
        self._shipped[key] = found  # the most recently used last
        # Models kept for the next cold start, as many as fit in SHIP_CACHE_BYTES; Ray
        # frees (or spills to disk) what is let go.
        while sum(size for _, size in self._shipped.values()) > SHIP_CACHE_BYTES:
            oldest = next(iter(self._shipped))
            if oldest == key:
                break
            del self._shipped[oldest]
        # In a list, so that Ray hands the actor the reference, not the bytes: a node that
        # has the model already never fetches it.
        return {"path": str(model), "key": key, "ref": [ref]}

    def spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def waiting(self, name: str, bundle: dict[str, float] | None) -> None:
        """Record that actor ``name`` waits for ``bundle`` (None: no longer) and ask Ray's
        autoscaler for every waiting replica at once: each call replaces the last."""
        if bundle is None:
            if self._waiting.pop(name, None) is None:
                return
        elif self._waiting.get(name) == bundle:
            return
        else:
            self._waiting[name] = bundle
        from ray.autoscaler.sdk import request_resources

        try:
            await asyncio.to_thread(request_resources, bundles=list(self._waiting.values()))
        except Exception as exc:  # noqa: BLE001 — a cluster without an autoscaler
            log.debug("ray: request_resources: %s", exc)

    async def _sweep_leftovers(self) -> None:
        import ray

        await asyncio.sleep(self.adopt_window_s)
        for name in self._leftovers - self._claimed:
            try:
                handle = await asyncio.to_thread(ray.get_actor, name, RAY_NAMESPACE)
            except ValueError:
                continue
            log.info("ray: stopping replica actor %s, which no service claims", name)
            await kill_actor(handle, name, grace_s=10.0)
