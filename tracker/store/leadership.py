"""One active runner per read model, and one alert deliverer, across every tracker process: a session advisory
lock held on a connection of its own, which PostgreSQL releases when that connection, or its process, dies."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from tracker.store.database import connect
from tracker.store.errors import UNAVAILABLE_ERRORS
from tracker.store.locks import leadership_key

__all__ = ["Leadership", "leadership_key"]  # tests import the key from here

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, database_url: str, name: str) -> None:
        self.name = name
        self.key = leadership_key(name)
        self._url = database_url
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()

    async def acquire(self, retry_interval: float) -> None:
        """Return once this process leads; until then stand by, asking again every `retry_interval`."""
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._connect()
                assert self._conn is not None
                if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
                    log.info("leading %s", self.name)
                    return
            except UNAVAILABLE_ERRORS as exc:
                log.warning("cannot ask to lead %s (%s); retrying", self.name, type(exc).__name__)
                await self.close()
            await asyncio.sleep(retry_interval)

    async def lost(self) -> None:
        """Resolve when the lock's connection is gone, and the lead with it."""
        await self._lost.wait()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # ends the session at once, and with it the lock

    async def _connect(self) -> None:
        self._lost = asyncio.Event()
        self._conn = await connect(self._url)
        lost = self._lost
        self._conn.add_termination_listener(lambda _conn: lost.set())
