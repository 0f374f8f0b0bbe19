"""Group commit: concurrent callers share transactions, and each is answered only after its commit."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from tracker.store.errors import OverloadedError
from tracker.store.event_log import Appended, EventLog, NewEvent

_Pending = tuple[NewEvent, "asyncio.Future[Appended]"]


class GroupCommit:
    """Queue appends and write whatever has queued up in one transaction.

    While one transaction commits, the next callers queue; the batch grows with the load, so the
    cost of a commit is shared without a timer adding latency at low load.
    """

    def __init__(self, log: EventLog, max_batch: int, max_pending: int) -> None:
        self._log = log
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_pending)
        self._writer: asyncio.Task[None] | None = None

    async def append(self, event: NewEvent) -> Appended:
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((event, future))
        except asyncio.QueueFull:
            msg = "too many notifications waiting for a commit"
            raise OverloadedError(msg) from None
        return await future

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name="group-commit")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        await self._queue.join()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._log.append([event for event, _ in batch])
        except asyncpg.PostgresError as exc:
            if len(batch) == 1:
                _settle(batch, exc)
                return
            # One bad event (say, a string jsonb refuses) must not fail its neighbours: write one by one.
            for pending in batch:
                await self._write([pending])
        except Exception as exc:  # the database is unreachable: every caller hears it and may retry
            _settle(batch, exc)
        else:
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)


def _settle(batch: list[_Pending], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
