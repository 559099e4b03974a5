"""Long lists of InferenceServices are rendered a slice at a time, so the event loop they
share with the gateway keeps answering other requests meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

from modelport.control.api import RENDER_SLICE, render_in_slices
from modelport.control.store import Resource


def rows(count: int) -> list[Resource]:
    return [Resource(kind="InferenceService", namespace="ns", name=f"s{i}") for i in range(count)]


def test_other_work_runs_between_slices_and_the_items_are_all_in_order() -> None:
    log: list[str] = []

    def render(row: Resource) -> dict[str, Any]:
        log.append(row.name)
        return {"name": row.name}

    async def other_request() -> None:
        log.append("other")

    async def main() -> list[dict[str, Any]]:
        listing = asyncio.create_task(render_in_slices(rows(5 * RENDER_SLICE), render))
        await asyncio.sleep(0)  # the list starts first and renders its first slice
        other = asyncio.create_task(other_request())
        items = await listing
        await other
        return items

    items = asyncio.run(main())
    assert [i["name"] for i in items] == [f"s{i}" for i in range(5 * RENDER_SLICE)]
    where = log.index("other")
    # The other request ran after the first slice, long before the last one.
    assert RENDER_SLICE <= where < 2 * RENDER_SLICE + 1


def test_a_short_list_is_rendered_in_one_turn() -> None:
    async def main() -> list[dict[str, Any]]:
        return await render_in_slices(rows(3), lambda r: {"name": r.name})

    assert asyncio.run(main()) == [{"name": "s0"}, {"name": "s1"}, {"name": "s2"}]
