"""Starting one unit of a revision: its predictor replica and, when the service has them, the
transformer in front of it and the explainer beside it. Each replica is confined
(isolation.py) and keyed, and is ready only once its model answers; and stopping units."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelport.control.backends import Backend
from modelport.control.backends.confine import Confinement
from modelport.control.backends.isolation import Isolation
from modelport.control.backends.process import Placement, Replica, ReplicaSpec
from modelport.control.revisions import RevisionState, Unit
from modelport.control.serving_runtimes import BUILTIN_RUNTIMES, ServingRuntime, resolve_runtime
from modelport.control.spec import Component


class LaunchFailed(Exception):
    """A unit did not start or did not become ready; the message says why (for describe)."""


class UnitLauncher:
    def __init__(
        self,
        backend: Backend,
        data_dir: Path,
        ready_timeout_s: float,
        isolation: Isolation | None,
    ) -> None:
        self.backend = backend
        self.data_dir = data_dir
        self.ready_timeout_s = ready_timeout_s
        self.isolation = isolation

    async def launch(
        self,
        namespace: str,
        service: str,
        rev: RevisionState,
        formats: tuple[ServingRuntime, ServingRuntime | None],
        slot: int,
    ) -> Unit:
        """A ready unit in ``slot`` of ``rev``; LaunchFailed otherwise (nothing left running).
        Cancelled, it stops what it started."""
        predictor_rt, transformer_rt = formats
        unit: Unit | None = None
        try:
            assert rev.predictor_path is not None
            spec = await self._spec(
                namespace, service, rev.isvc.predictor, predictor_rt, rev, "predictor", slot
            )
            predictor = await self.backend.start(spec)
            unit = Unit(predictor, slot=slot)
            predictor.on_wait = lambda why: setattr(rev, "message", why)
            await self._ready(unit, predictor)
            if rev.isvc.transformer is not None and transformer_rt is not None:
                tspec = await self._spec(
                    namespace,
                    service,
                    rev.isvc.transformer,
                    transformer_rt,
                    rev,
                    "transformer",
                    slot,
                )
                tspec.predictor_host = predictor.address
                tspec.predictor_protocol = rev.isvc.predictor.protocol_version
                tspec.predictor_key = predictor.key
                unit.transformer = await self.backend.start(tspec)
                await self._ready(unit, unit.transformer)
            if rev.isvc.explainer is not None:
                unit.explainer = await self._explainer(namespace, service, rev, slot, predictor)
                await self._ready(unit, unit.explainer)
        except (asyncio.CancelledError, LaunchFailed):
            await stop_unit(unit)
            raise
        except (OSError, RuntimeError, TimeoutError) as exc:
            # The backend could not start a process at all (fork failed, zygote gone).
            await stop_unit(unit)
            raise LaunchFailed(f"could not start a replica: {type(exc).__name__}: {exc}") from exc
        return unit

    async def _explainer(
        self, namespace: str, service: str, rev: RevisionState, slot: int, predictor: Replica
    ) -> Replica:
        """The explainer replica, confined as the transformer is. As KServe's
        CustomExplainer.GetContainer passes --predictor_host (the predictor's Service, never
        the transformer's: components/explainer.go), it calls this unit's predictor."""
        explainer = rev.isvc.explainer
        assert explainer is not None
        # Always a custom (.py) model: the built-in custom runtime serves it.
        runtime = resolve_runtime(namespace, explainer, BUILTIN_RUNTIMES, path="spec.explainer")
        espec = await self._spec(namespace, service, explainer, runtime, rev, "explainer", slot)
        espec.predictor_host = predictor.address
        espec.predictor_protocol = rev.isvc.predictor.protocol_version
        espec.predictor_key = predictor.key
        return await self.backend.start(espec)

    async def _ready(self, unit: Unit, replica: Replica) -> None:
        if await replica.wait_ready(self.ready_timeout_s):
            return
        failed = next((r for r in unit.replicas if r.returncode is not None), replica)
        lines = [line for line in failed.last_lines(3) if line.strip()]
        message = (
            f"replica exited with code {failed.returncode}"
            if failed.returncode is not None
            else "replica did not become ready in time"
        ) + (f": {lines[-1].strip()}" if lines else "")
        raise LaunchFailed(message)

    async def _spec(
        self,
        namespace: str,
        service: str,
        component: Component,
        runtime: ServingRuntime,
        rev: RevisionState,
        part: str,
        slot: int,
    ) -> ReplicaSpec:
        model = {
            "predictor": rev.predictor_path,
            "transformer": rev.transformer_path,
            "explainer": rev.explainer_path,
        }[part]
        assert model is not None
        name = replica_part(part, rev.row.number, slot)
        batcher = component.batcher
        spec = ReplicaSpec(
            model_name=service,
            model_path=model,
            server_format=runtime.server_format,
            log_file=self.data_dir / "logs" / namespace / service / f"{service}-{name}.log",
            # Container args are for the image's own server and are not passed on (reported
            # as not acted on); environment variables are, as the model code may read them.
            env={**runtime.env, **component.env},
            max_batch_size=batcher.max_batch_size if batcher else None,
            max_latency_ms=batcher.max_latency_ms if batcher else None,
        )
        spec.confinement = await self._confine(namespace, service, component, model, name)
        spec.replica_id = f"{namespace}/{service}/{name}"
        spec.placement = Placement(
            cpus=component.cpu_request or component.cpu_limit,
            memory_bytes=component.memory_request or component.memory_limit,
            gpus=component.gpu_limit or 0,
            labels=tuple(sorted(component.node_selector.items())),
        )
        return spec

    async def _confine(
        self, namespace: str, service: str, component: Component, model: Path, part: str
    ) -> Confinement | None:
        """What this replica may reach: its model, and a private folder made fresh."""
        if self.isolation is None:
            return None
        private = await asyncio.to_thread(self.isolation.private_dir, namespace, service, part)
        return self.isolation.confinement(
            namespace,
            [model],
            private,
            memory_bytes=component.memory_limit,
            cpu_limit=component.cpu_limit,
        )


def replica_part(part: str, revision: int, slot: int) -> str:
    """A replica's name within its service (predictor-00001-0): its log file, its private
    folder and its id are named by it."""
    return f"{part}-{revision:05d}-{slot}"


async def stop_unit(unit: Unit | None) -> None:
    if unit is None:
        return
    await asyncio.gather(*(r.stop() for r in unit.replicas), return_exceptions=True)
