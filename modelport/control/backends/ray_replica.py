"""A replica on a Ray cluster as the controller sees it: an actor (``ray_host.ReplicaHost``)
that it waits for Ray to place, then its model server's address, exit and log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from typing import TYPE_CHECKING, Any

from modelport.control.backends.process import Placement, Replica, ReplicaSpec

if TYPE_CHECKING:
    from modelport.control.backends.ray import RayBackend

RAY_NAMESPACE = "modelport"
LOG_COPY_S = 1.0
PLACEMENT_CHECK_S = 1.0


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
    # A shipped model by its content: each instance keeps its own copy at its own path.
    content = {m["path"]: f"content:{m['key']}" for m in request.get("ship") or ()}
    serve = {**request["serve"], "settings": dict(request["serve"]["settings"])}
    serve["path"] = content.get(serve["path"], serve["path"])
    for key in ("host", "http_port"):
        serve["settings"].pop(key, None)
    env = {k: v for k, v in request["env"].items() if k not in ("HOME", "TMPDIR", "PATH")}
    confinement = dict(request.get("confinement") or {})
    confinement["model_paths"] = [content.get(p, p) for p in confinement.get("model_paths", ())]
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
        code = await kill_actor(self.handle, self.name, grace_s)
        self.proc.exited(code if code is not None else -15)
        self.backend.replicas.pop(self.name, None)


async def kill_actor(handle: Any, name: str, grace_s: float) -> int | None:
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
