"""A loop that waits for a wake-up ends when cancelled, even when the wake-up lands in the same turn."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

import pytest

from tracker.wake import woken


async def wake_loop(wait: Callable[[asyncio.Event], Awaitable[object]], wake: asyncio.Event) -> None:
    """The shape of every runner in the tracker: wait for a wake-up or the poll interval, work, again."""
    while True:
        await wait(wake)
        wake.clear()


async def woken_for_a_minute(wake: asyncio.Event) -> bool:
    return await woken(wake, 60)


async def wait_for_a_minute(wake: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), 60)


async def ends_when_woken_and_cancelled_at_once(wait: Callable[[asyncio.Event], Awaitable[object]]) -> bool:
    wake = asyncio.Event()
    loop = asyncio.create_task(wake_loop(wait, wake))
    await asyncio.sleep(0)  # the loop is waiting now
    wake.set()  # the NOTIFY of an append arrives...
    loop.cancel()  # ...as the tracker closes
    done, _ = await asyncio.wait([loop], timeout=1)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    return bool(done)


async def test_a_woken_loop_ends_when_cancelled_in_the_same_turn() -> None:
    assert await ends_when_woken_and_cancelled_at_once(woken_for_a_minute)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for is built on asyncio.timeout since 3.12")
async def test_wait_for_would_have_swallowed_the_cancellation() -> None:
    """Why `woken` exists: the same loop around `asyncio.wait_for` keeps running on Python 3.11."""
    assert not await ends_when_woken_and_cancelled_at_once(wait_for_a_minute)


async def test_woken_says_whether_it_was_woken_or_timed_out() -> None:
    wake = asyncio.Event()
    assert await woken(wake, 0.01) is False
    wake.set()
    assert await woken(wake, 60) is True
