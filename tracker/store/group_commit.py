"""Group commit: concurrent callers share transactions, and each is answered only after its commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from eventsourcing.persistence import StoredEvent

from tracker.store.errors import EventRefusedError, OverloadedError, StoreUnavailableError, refused_by_database
from tracker.store.event_log import Appended, EventLog, NewEvent

log = logging.getLogger(__name__)

_Pending = tuple[NewEvent, StoredEvent, "asyncio.Future[Appended]"]


class GroupCommit:
    """Queue appends and write whatever has queued up in one transaction.

    While one transaction commits, the next callers queue; the batch grows with the load, so the
    cost of a commit is shared without a timer adding latency at low load.
    """

    def __init__(
        self,
        event_log: EventLog,
        max_batch: int,
        max_pending: int,
        writers: int = 2,
        on_batch: Callable[[int], object] = lambda _: None,
    ) -> None:
        self._event_log = event_log
        self._on_batch = on_batch
        """Hears the size of each batch taken from the queue (the batch-size histogram)."""
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_pending)
        self._writer_count = writers
        self._writers: list[asyncio.Task[None]] = []
        self._stopping = False

    async def append(
        self, event: NewEvent, stored: StoredEvent | None = None, *, wait_for_room: bool = False
    ) -> Appended:
        """Resolve once the event's transaction commits.

        `stored` is the event as the log stores it, when the caller mapped it already (a door, whose
        conversion maps each delivery); else it is mapped here. Either way in the caller's task, so that an
        event that cannot be mapped fails its caller alone, never the batch it would have joined.
        A full queue raises OverloadedError (a webhook answers 503 and the sender retries), unless
        `wait_for_room`, for callers that can simply slow down, like a file import.
        """
        if self._stopping:
            msg = "the tracker is stopping"
            raise StoreUnavailableError(msg)
        if stored is None:
            stored = event.to_stored(self._event_log.mapper)
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        if wait_for_room:
            await self._queue.put((event, stored, future))
        else:
            try:
                self._queue.put_nowait((event, stored, future))
            except asyncio.QueueFull:
                msg = "too many notifications waiting for a commit"
                raise OverloadedError(msg) from None
        return await future

    @property
    def full(self) -> bool:
        return self._queue.full()

    def start(self) -> None:
        # Two writers keep a batch on its way while the previous one commits: the next waits on the
        # append lock inside PostgreSQL, not for a round trip back to Python.
        self._writers = [
            asyncio.create_task(self._write_forever(), name=f"group-commit-{n}") for n in range(self._writer_count)
        ]

    async def stop(self) -> None:
        """Refuse new appends, write what is queued, then stop."""
        self._stopping = True
        await self._queue.join()
        for writer in self._writers:
            writer.cancel()
        for writer in self._writers:
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                self._on_batch(len(batch))
                await self._write(batch)
            except Exception as exc:  # a bug must fail these callers, not stop every later one
                log.exception("group commit failed on a batch of %d", len(batch))
                _fail(batch, exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._event_log.append(
                [event for event, _, _ in batch], [stored for _, stored, _ in batch]
            )
        except asyncpg.PostgresError as exc:
            if not refused_by_database(exc):  # a timeout, a full disk, a failover: the sender should retry
                _fail(batch, StoreUnavailableError(f"event log unavailable: {type(exc).__name__}"))
                return
            if len(batch) == 1:
                _fail(batch, EventRefusedError(f"the database refused the event: {exc}"))
                return
            # One bad event (say, an id too long to index) must not fail its neighbours: one by one.
            for pending in batch:
                await self._write([pending])
        except StoreUnavailableError as exc:  # every caller hears it and may retry
            _fail(batch, exc)
        else:
            for (_, _, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)
