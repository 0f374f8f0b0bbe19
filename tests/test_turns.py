"""Long loops give the event loop a turn at every n-th item, and only then."""

from __future__ import annotations

import asyncio

from tracker.turns import give_way


async def test_other_tasks_run_at_every_nth_item_only() -> None:
    ran: list[int] = []

    async def other() -> None:
        ran.append(1)

    task = asyncio.ensure_future(other())  # ready to run, waiting for a turn
    await give_way(3, every=4)
    assert not ran
    await give_way(4, every=4)
    assert ran == [1]
    await task
