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
import hashlib
import io
import json
import logging
import math
import tarfile
import time
from pathlib import Path
from typing import Any

from modelport.control.backends.process import Placement, Replica, ReplicaSpec
from modelport.control.backends.ray_host import ReplicaHost

log = logging.getLogger("modelport.controller")

RAY_NAMESPACE = "modelport"
ADOPT_WINDOW_S = 120.0
LOG_COPY_S = 1.0
PLACEMENT_CHECK_S = 1.0
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
        self._shipped: dict[str, Any] = {}
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

        key = await asyncio.to_thread(content_key, model)
        # Let go of models no replica of this platform's runs any more.
        live = {m["key"] for r in self.replicas.values() for m in r.request.get("ship", ())}
        for old in set(self._shipped) - live - {key}:
            del self._shipped[old]
        ref = self._shipped.get(key)
        if ref is None:
            data = await asyncio.to_thread(pack, model)
            ref = self._shipped[key] = await asyncio.to_thread(ray.put, data)
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
            await _kill(handle, name, grace_s=10.0)


def content_key(model: Path) -> str:
    """Names a model's content: its files' names, sizes and modification times."""
    digest = hashlib.sha256(str(model.resolve()).encode())
    files = sorted(model.rglob("*")) if model.is_dir() else [model]
    for item in files:
        st = item.lstat()
        digest.update(
            f"{item.relative_to(model.parent)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:32]


def pack(model: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(model, arcname=model.name)
    return buffer.getvalue()


def actor_resources(placement: Placement) -> dict[str, Any]:
    """Ray's resource options for a replica: CPUs as requested (1 unless asked; never 0,
    or every replica would pile onto one node), memory in bytes, whole GPUs."""
    options: dict[str, Any] = {"num_cpus": placement.cpus if placement.cpus else 1}
    if placement.memory_bytes:
        options["memory"] = placement.memory_bytes
    if placement.gpus:
        options["num_gpus"] = placement.gpus
    if placement.labels:
        # nodeSelector as a Ray label selector: nodes started with `ray start --labels`.
        options["label_selector"] = dict(placement.labels)
    return options


def bundle_of(placement: Placement) -> dict[str, float]:
    """The same needs as a resource bundle (for the autoscaler)."""
    options = actor_resources(placement)
    bundle = {"CPU": float(options["num_cpus"])}
    if "num_gpus" in options:
        bundle["GPU"] = float(options["num_gpus"])
    if "memory" in options:
        bundle["memory"] = float(options["memory"])
    return bundle


def describe_needs(placement: Placement) -> str:
    cpus = placement.cpus if placement.cpus else 1
    parts = [f"{cpus:g} CPU"]
    if placement.memory_bytes:
        parts.append(f"{math.ceil(placement.memory_bytes / 2**20)} MiB of memory")
    if placement.gpus:
        parts.append(f"{placement.gpus} GPU")
    text = ", ".join(parts)
    if placement.labels:
        text += " on a node labelled " + ", ".join(f"{k}={v}" for k, v in placement.labels)
    return text


def fingerprint(request: dict[str, Any]) -> str:
    """What makes a running model server the one a request asks for. Left out: what each
    start picks anew (port, private folder, key) and what differs between platform
    instances for the same service (data folder, uid numbering)."""
    serve = {**request["serve"], "settings": dict(request["serve"]["settings"])}
    for key in ("host", "http_port"):
        serve["settings"].pop(key, None)
    env = {k: v for k, v in request["env"].items() if k not in ("HOME", "TMPDIR", "PATH")}
    confinement = dict(request.get("confinement") or {})
    for key in ("port", "private_dir", "hidden", "uid", "gid", "cpus", "cover"):
        confinement.pop(key, None)
    text = json.dumps([serve, env, confinement], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class RayProcess:
    """The model server on its node, as far as the controller cares: its exit code."""

    def __init__(self) -> None:
        self.pid = 0
        self.returncode: int | None = None
        self._done = asyncio.Event()

    def exited(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        assert self.returncode is not None
        return self.returncode


class RayReplica(Replica):
    """A replica whose model server runs under a Ray actor, maybe on another node."""

    proc: RayProcess

    def __init__(
        self,
        backend: RayBackend,
        handle: Any,
        name: str,
        spec: ReplicaSpec,
        request: dict[str, Any],
    ) -> None:
        super().__init__(RayProcess(), 0, spec.log_file, spec.model_name, spec.key)
        self.backend = backend
        self.handle = handle
        self.name = name
        self.placement = spec.placement
        self.request = request
        self.host = ""
        self.node = ""
        self.adopted = False
        self.actor_id: str = handle._actor_id.hex()  # noqa: SLF001 — Ray has no public getter

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def wait_ready(self, timeout: float) -> bool:
        """Wait for Ray to place the actor (however long: a pending replica says why it
        waits), then for the model to answer within ``timeout``."""
        if not self.host and not await self._launch():
            return False
        return await super().wait_ready(timeout)

    async def _launch(self) -> bool:
        from ray.exceptions import RayActorError, RayTaskError

        ref = self.handle.launch.remote(self.request, fingerprint(self.request))
        future = asyncio.wrap_future(ref.future())
        started = time.monotonic()
        try:
            while True:
                try:
                    info = await asyncio.wait_for(asyncio.shield(future), PLACEMENT_CHECK_S)
                    break
                except TimeoutError:
                    await self._report_wait(time.monotonic() - started)
        except (RayActorError, RayTaskError) as exc:
            self._failed(_reason(exc))
            return False
        finally:
            await self.backend.waiting(self.name, None)
        self.host, self.port, self.node = str(info["ip"]), int(info["port"]), str(info["node"])
        self.proc.pid = int(info["pid"])
        self.adopted = bool(info["adopted"])
        if info["key"] != self.key:  # adopted: the running server has the key it began with
            self.key = str(info["key"])
            self.key_header = (self.key_header[0], self.key.encode())
        self.backend.spawn(self._watch())
        self.backend.spawn(self._copy_log())
        return True

    async def _report_wait(self, waited_s: float) -> None:
        """Tell the controller why the replica has not started: Ray has no node with room."""
        state = await asyncio.to_thread(_actor_state, self.actor_id)
        if state == "PENDING_CREATION" or (state is None and waited_s > 5):
            needs = describe_needs(self.placement)
            if self.on_wait is not None:
                self.on_wait(f"waiting for {needs} on the Ray cluster")
            await self.backend.waiting(self.name, bundle_of(self.placement))

    async def _watch(self) -> None:
        """Note the model server's exit (or its actor's death) as this replica's exit."""
        from ray.exceptions import ActorUnavailableError, RayActorError

        while self.proc.returncode is None:
            try:
                code = await self.handle.wait_exit.remote()
            except ActorUnavailableError:
                await asyncio.sleep(1.0)  # the node is briefly unreachable; ask again
                continue
            except RayActorError as exc:
                self._failed(f"the replica's Ray actor died: {_reason(exc)}")
                return
            self.proc.exited(int(code))

    async def _copy_log(self) -> None:
        """Append the node's log of this replica to the platform's copy (``logs`` reads it)."""
        from ray.exceptions import RayError

        offset = 0
        while True:
            done = self.proc.returncode is not None
            try:
                data, offset = await self.handle.read_log.remote(offset)
            except RayError:
                return
            if data:
                with self.log_file.open("ab") as f:
                    f.write(data)
            if done:
                return
            await asyncio.sleep(LOG_COPY_S)

    def _failed(self, message: str) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as f:
            f.write(f"error: {message}\n".encode())
        self.proc.exited(-1)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop the model server's process group, then the actor, and wait for Ray to free
        the actor's name (the next replica in this slot takes it)."""
        code = await _kill(self.handle, self.name, grace_s)
        self.proc.exited(code if code is not None else -15)
        self.backend.replicas.pop(self.name, None)


async def _kill(handle: Any, name: str, grace_s: float) -> int | None:
    import ray
    from ray.exceptions import RayError

    code: int | None = None
    try:
        code = await asyncio.wait_for(handle.stop.remote(grace_s), grace_s + 10)
    except (RayError, TimeoutError):
        pass
    try:
        ray.kill(handle, no_restart=True)
    except (RayError, ValueError):
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            await asyncio.to_thread(ray.get_actor, name, RAY_NAMESPACE)
        except ValueError:
            break
        await asyncio.sleep(0.1)
    return code


def _actor_state(actor_id: str) -> str | None:
    """The actor's state from Ray's state API (needs the dashboard), None when unknown."""
    try:
        from ray.util.state import get_actor

        found = get_actor(actor_id, timeout=5)
    except Exception:  # noqa: BLE001 — no dashboard, or it is busy: the caller guesses
        return None
    return str(found.state) if found is not None else None


def _reason(exc: BaseException) -> str:
    """One line from a Ray error: the actor's own exception when there is one."""
    cause = getattr(exc, "cause", None)
    if cause is not None and str(cause):
        return str(cause).strip().splitlines()[-1]
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
