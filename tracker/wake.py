"""Waiting for a wake-up, or a poll interval, in the loops that run until the tracker stops."""

from __future__ import annotations

import asyncio


async def woken(wake: asyncio.Event, seconds: float) -> bool:
    """Wait until `wake` is set (True) or `seconds` pass (False).

    Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that lands while the event is
    being set (gh-86296), and the loop around it then never ends: a stopping tracker hung in `close`.
    """
    try:
        async with asyncio.timeout(seconds):
            await wake.wait()
    except TimeoutError:
        return False
    return True
