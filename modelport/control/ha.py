"""One ``modelport up`` instance among several on one database: it runs the controller only
while it holds the leader lease (``leadership.py``), and stops it the moment it may no
longer be sure it does.

A controller that was stopped cannot be started again (it stops its replicas and closes its
backend for good), so an instance that leads a second time builds a fresh one and hands it
to everything that holds the controller (``adopt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from modelport.control.controller import Controller
from modelport.control.endpoints import Publisher, create_tables
from modelport.control.follower_graphs import FollowerSite
from modelport.control.follower_routing import DemandReport, EndpointBook, FollowerRouter
from modelport.control.leadership import Elector, Lease, forget_address, publish_address
from modelport.control.routing import ServiceRouter
from modelport.control.store import Store
from modelport.gateway.app import Gateway, Router
from modelport.graph import GraphRouter

log = logging.getLogger("modelport.controller.leadership")

RETRY_S = 5.0


class Elects(Protocol):
    """What this needs of an elector (``leadership.Elector``; tests use a fake)."""

    leading: bool
    changed: asyncio.Event

    @property
    def role(self) -> str: ...

    @property
    def holder(self) -> str: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class LeaderOnly:
    """Runs ``controller`` while the elector says this instance leads."""

    def __init__(
        self,
        elector: Elects,
        controller: Controller,
        make_controller: Callable[[], Controller],
        adopt: Callable[[Controller], None],
        *,
        on_change: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        self.elector = elector
        self.controller = controller
        self._make_controller = make_controller
        self._adopt = adopt
        self._on_change = on_change
        self._running: asyncio.Task[None] | None = None
        self._used = False  # this controller ran once: the next leadership needs a new one
        self._watch: asyncio.Task[None] | None = None
        self._reported: bool | None = None  # the role last told to on_change

    @property
    def acting(self) -> bool:
        return self._running is not None

    async def start(self, first_attempt: Callable[[], Awaitable[None]] | None = None) -> None:
        """Know the role before serving (one lease attempt), then follow it."""
        if first_attempt is not None:
            await first_attempt()
        log.info("%s (instance %s)", self.elector.role, self.elector.holder)
        await self._follow()
        self.elector.changed.clear()
        self.elector.start()
        self._watch = asyncio.create_task(self._watch_role(), name="leader-only")

    async def stop(self) -> None:
        """Stop following the lease, stop the controller if it runs, give the lease up."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._stop_controller()
        await self.elector.stop()

    async def _watch_role(self) -> None:
        while True:
            await self.elector.changed.wait()
            self.elector.changed.clear()
            try:
                await self._follow()
            except Exception:  # a failed start or stop must not end the watch
                log.exception("changing role failed")

    async def _follow(self) -> None:
        if self.elector.leading and self._running is None:
            if self._used:
                self.controller = self._make_controller()
                self._adopt(self.controller)
            self._used = True
            # A task, so that losing the lease while the controller starts can cancel it.
            self._running = asyncio.create_task(self._lead(), name="controller-start")
        elif not self.elector.leading and self._running is not None:
            log.warning("no longer leading: stopping the controller and its replicas")
            await self._stop_controller()
            await self._tell(False)
        elif not self.elector.leading:
            await self._tell(False)

    async def _lead(self) -> None:
        """Start the controller; only then say so (the gateway then routes with it).

        A start that fails (the backend cannot open, the store cannot be read) is tried
        again with a fresh controller while the lease is held: an instance that holds the
        lease but runs nothing would leave every instance without replicas.
        """
        while True:
            try:
                await self.controller.start()
                break
            except Exception:
                log.exception("the controller failed to start; trying again in %s s", RETRY_S)
                with contextlib.suppress(Exception):
                    await self.controller.stop()
            await asyncio.sleep(RETRY_S)
            self.controller = self._make_controller()
            self._adopt(self.controller)
        await self._tell(True)

    async def _tell(self, leading: bool) -> None:
        if self._on_change is not None and self._reported is not leading:
            self._reported = leading
            await self._on_change(leading)

    async def _stop_controller(self) -> None:
        running, self._running = self._running, None
        if running is None:
            return
        if not running.done():
            running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
        await self.controller.stop()


class SharedInstance:
    """Everything an instance on a shared database runs besides what every instance runs:
    the lease and where it listens (for the others to relay the control plane to it,
    ``leader_forward.py``); while leading, the controller and the publication of its
    replicas; while not, a gateway router to the leader's replicas (graphs in front, the
    leader's queueing and payload logging) that reports its demand."""

    def __init__(
        self,
        store: Store,
        base_url: str,
        gateway: Gateway,
        router: ServiceRouter,
        make_controller: Callable[[], Controller],
        adopt: Callable[[Controller], None],
        *,
        address: str | None = None,
    ) -> None:
        engine = store.engine
        # Unique per run, and readable: which instance (by its URL) leads is what people ask.
        holder = f"{base_url} {uuid.uuid4().hex[:8]}"
        self.elector = Elector(Lease(engine, holder))
        create_tables(engine)
        self.engine = engine
        # Where this instance's own listener is, for standbys to forward the control plane
        # to while it leads (leader_forward.py); None: it never serves as their leader.
        self.address = address
        self.gateway = gateway
        # What the gateway routes with as built (InferenceGraphs in front of the services,
        # control/graphs.py): the leader keeps it; a follower puts graphs in front of its
        # own router in the same way.
        self.leader_router: Router = gateway.router or router
        self.leader_only = LeaderOnly(
            self.elector, router.controller, make_controller, adopt, on_change=self._role
        )
        self.publisher = Publisher(engine, lambda: self.leader_only.controller, holder)
        self.book = EndpointBook(engine)
        self.demand = DemandReport(engine, holder)
        self.services_router = FollowerRouter(self.book, self.demand, store, logger=router.logger)
        self.follower_router: Router = self.services_router
        if isinstance(self.leader_router, GraphRouter):
            site = FollowerSite(self.leader_router.site, store)
            self.follower_router = GraphRouter(self.services_router, site)
        self._book_task: asyncio.Task[None] | None = None
        self._report_task: asyncio.Task[None] | None = None
        gateway.health_details = self.health

    def health(self) -> dict[str, str]:
        """For /healthz: this instance's role, and its id as the lease names it."""
        return {"role": self.elector.role, "instance": self.elector.holder}

    def leading(self) -> bool:
        return self.elector.leading

    async def start(self) -> None:
        if self.address is not None:
            await asyncio.to_thread(publish_address, self.engine, self.elector.holder, self.address)
        else:
            log.warning(
                "no listening address known: while this instance leads, the others "
                "cannot relay the control plane to it"
            )
        # Read while leading too: requests that began waiting for the old leader's replicas
        # before this instance took over are answered from its own publication.
        self._book_task = asyncio.create_task(self.book.run(), name="endpoint-book")
        await self.leader_only.start(self.elector.attempt)

    async def stop(self) -> None:
        await self.leader_only.stop()
        await self._stop_reporting()
        await self.publisher.stop()
        await _cancel(self._book_task)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.demand.forget)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(forget_address, self.engine, self.elector.holder)

    async def _role(self, leading: bool) -> None:
        if leading:
            await self._stop_reporting()
            self.gateway.router = self.leader_router
            self.publisher.start()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.demand.forget)
        else:
            await self.publisher.stop()
            self.gateway.router = self.follower_router
            self._report_task = asyncio.create_task(self.demand.run(), name="demand-report")

    async def _stop_reporting(self) -> None:
        task, self._report_task = self._report_task, None
        await _cancel(task)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
