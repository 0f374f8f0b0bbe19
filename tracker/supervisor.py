"""The owner of the tracker's background work: each piece is started once and closed in the reverse order.

Closing order matters: the embedded server's keeper stops first (a server stopped along with this process
is not restarted), then the Kinesis consumers and config fetches whose commits are in flight, then the group
commit they append through, then the runners and their leaderships, and the pool last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Supervisor:
    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self._tasks: list[asyncio.Task[Any]] = []
        self._owned: dict[str, asyncio.Task[None]] = {}

    def on_close(self, close: Callable[[], Awaitable[object]]) -> None:
        """Run `close` when the tracker closes, before whatever was registered earlier."""
        self._stack.push_async_callback(close)

    def spawn(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run `work` in the background until it ends or `cancel_spawned` cancels it."""
        task = asyncio.create_task(work, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._forget)
        return task

    def own(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` in a task of its own, cancelled at this point of the closing order."""
        task = self._owned[name] = asyncio.create_task(work, name=name)
        self.on_close(lambda: _cancel(task))

    def task(self, name: str) -> asyncio.Task[Any] | None:
        """The running task of that name, for probes and tests: is the keeper or a runner still there?"""
        return self._owned.get(name) or next((task for task in self._tasks if task.get_name() == name), None)

    async def cancel_spawned(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        await self._stack.aclose()

    def _forget(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:  # closing goes on regardless
        log.error("%s had stopped on an error", task.get_name(), exc_info=task.exception())
