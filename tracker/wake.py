"""Waiting for a wake-up, or a poll interval, in the loops that run until the tracker stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

_MAX_BACKOFF = 30.0
"""Most seconds a loop that keeps failing waits before it tries again."""


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


async def follow(
    work: Callable[[], Awaitable[object]],
    wake: asyncio.Event,
    *,
    poll_interval: float,
    min_interval: float,
    log: logging.Logger,
    what: str,
) -> None:
    """Run `work`, then sleep until woken (a NOTIFY) or the next poll, forever; a failure is logged and tried
    again after a back-off that doubles from `poll_interval`.

    Runs start at least `min_interval` apart: a busy log notifies on every commit, and a run per commit
    would spend the webhook's CPU on a few events each.
    """
    loop = asyncio.get_running_loop()
    backoff = poll_interval
    while True:
        wake.clear()
        started = loop.time()
        try:
            await work()
            backoff = poll_interval
        except Exception:  # the loop must outlive a failure: log it, back off, try again
            log.exception("%s failed; retrying in %.0f s", what, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
            continue
        await woken(wake, poll_interval)
        await asyncio.sleep(max(0.0, started + min_interval - loop.time()))
