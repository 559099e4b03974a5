"""LeaderOnly: the controller runs exactly while the elector says this instance leads, the
gateway is told only once the controller has started, and a second leadership gets a
fresh controller (a stopped one cannot start again)."""

from __future__ import annotations

import asyncio
from typing import Any

from modelport.control.ha import LeaderOnly


class FakeElector:
    holder = "me"

    def __init__(self) -> None:
        self.leading = False
        self.changed = asyncio.Event()

    @property
    def role(self) -> str:
        return "leading" if self.leading else "standby"

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def flip(self, leading: bool) -> None:
        self.leading = leading
        self.changed.set()


class FakeController:
    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name
        self.stopped = False

    async def start(self) -> None:
        assert not self.stopped, "a stopped controller was started again"
        await asyncio.sleep(0.05)  # starting takes a while: reading the store, a backend
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.stopped = True
        self.log.append(f"stop {self.name}")


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.02)


def test_runs_the_controller_only_while_leading_and_a_fresh_one_each_time():
    async def scenario() -> None:
        log: list[str] = []
        made = iter(["second", "third"])
        adopted: list[Any] = []
        elector = FakeElector()

        async def told(leading: bool) -> None:
            log.append(f"role {leading}")

        only = LeaderOnly(
            elector,
            FakeController(log, "first"),  # type: ignore[arg-type]
            lambda: FakeController(log, next(made)),  # type: ignore[arg-type,return-value]
            adopted.append,
            on_change=told,
        )
        await only.start()
        assert log == ["role False"] and not only.acting
        elector.flip(True)
        await _settle()
        assert log == ["role False", "start first", "role True"]
        elector.flip(False)
        await _settle()
        assert log[-2:] == ["stop first", "role False"]
        elector.flip(True)
        await _settle()
        assert [c.name for c in adopted] == ["second"]
        assert log[-2:] == ["start second", "role True"]
        await only.stop()
        assert log[-1] == "stop second"

    asyncio.run(scenario())


def test_losing_the_lease_while_the_controller_starts_cancels_the_start():
    async def scenario() -> None:
        log: list[str] = []
        elector = FakeElector()
        elector.leading = True

        async def told(leading: bool) -> None:
            log.append(f"role {leading}")

        only = LeaderOnly(
            elector,
            FakeController(log, "first"),  # type: ignore[arg-type]
            lambda: FakeController(log, "second"),  # type: ignore[arg-type,return-value]
            lambda _: None,
            on_change=told,
        )
        await only.start()  # leading from the first attempt: the start is under way
        elector.flip(False)
        await _settle()
        assert "start first" not in log and "role True" not in log
        assert log == ["stop first", "role False"]

    asyncio.run(scenario())


class BrokenController(FakeController):
    async def start(self) -> None:
        self.log.append(f"failed {self.name}")
        raise OSError("backend unavailable")


def test_a_controller_that_fails_to_start_is_replaced_while_leading(monkeypatch):
    monkeypatch.setattr("modelport.control.ha.RETRY_S", 0.05)

    async def scenario() -> None:
        log: list[str] = []
        adopted: list[Any] = []
        elector = FakeElector()
        elector.leading = True

        async def told(leading: bool) -> None:
            log.append(f"role {leading}")

        only = LeaderOnly(
            elector,
            BrokenController(log, "first"),  # type: ignore[arg-type]
            lambda: FakeController(log, "second"),  # type: ignore[arg-type,return-value]
            adopted.append,
            on_change=told,
        )
        await only.start()
        await _settle()
        assert log == ["failed first", "stop first", "start second", "role True"]
        assert [c.name for c in adopted] == ["second"]
        await only.stop()

    asyncio.run(scenario())
