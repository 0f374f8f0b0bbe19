"""Waiting for the read models to pass a position (`?minPosition=`), for any number of requests at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

_POLL_INTERVAL = 0.01


class CheckpointWatch:
    """One reading of the checkpoints at a time, shared by every waiting request: a thousand requests
    waiting for their writes cost one query per poll interval, not a thousand."""

    def __init__(self, reached: Callable[[], Awaitable[int]], interval: float = _POLL_INTERVAL) -> None:
        self._read_reached = reached
        self._interval = interval
        self._reading: asyncio.Future[int] | None = None
        self._last = 0

    async def wait_for(self, position: int, max_wait: float) -> int:
        """The position every read model has reached, once it is `position` or more, or after `max_wait` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while True:
            if self._reading is None or self._reading.done():
                self._reading = asyncio.ensure_future(self._read())
            try:  # shielded: one waiter timing out must not cancel the reading the others share
                async with asyncio.timeout_at(deadline):  # not wait_for: see `tracker.wake`
                    reached = await asyncio.shield(self._reading)
            except TimeoutError:
                return self._last
            if reached >= position or loop.time() >= deadline:
                return reached
            await asyncio.sleep(min(self._interval, max(0.0, deadline - loop.time())))

    async def _read(self) -> int:
        self._last = await self._read_reached()
        return self._last
