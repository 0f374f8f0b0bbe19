"""The change feed: each installation, connection and destination whose state changed, with its document.

`sql/013_changes.sql` stamps a row of `view_changes` with the next `seq` whenever a view changes, in
commit order; a reader pages through `seq > after`. It is a feed of states, not of events: an entity
that changed twice between two reads comes once, in its latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tracker.store import views
from tracker.store.database import Connection, Pool
from tracker.store.errors import UNAVAILABLE_ERRORS
from tracker.store.listener import listen_for_appends
from tracker.store.views import ViewTable
from tracker.wake import woken

log = logging.getLogger(__name__)

CHANNEL = "tracker_view_changes"
"""Notified by the stamping trigger once the views changed (on commit)."""
PAGE_SIZE = 100
"""Changes read per query: what a follower holds in memory while a slow reader takes them."""

_TABLES: dict[str, ViewTable] = {
    "installation": views.INSTALLATIONS,
    "connection": views.CONNECTIONS,
    "destination": views.DESTINATIONS,
}


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    """Where the change is in the feed: pass the last one handled as `after` to resume."""
    entity: str
    """installation | connection | destination"""
    entity_id: str
    position: int
    """The log position of the last event folded into the document."""
    document: dict[str, Any]
    """As `GET /v1/<entity>s/{id}` serves it: an installation's health joins its connection's and destinations'."""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "entity": self.entity,
            "entityId": self.entity_id,
            "position": self.position,
            "document": self.document,
        }


@dataclass(frozen=True, slots=True)
class ChangePage:
    changes: list[Change]
    last_seq: int
    """The last stamp read (or `after` if none): where the next page starts."""
    more: bool
    """Whether the page was full: more changes may follow at once."""


async def _documents(conn: Connection, table: ViewTable, keys: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT v.{table.key_column} AS key, v.doc {table.joins or f'FROM {table.table} v'}"
        f" WHERE v.{table.key_column} = ANY($1::text[])",
        keys,
    )
    return {row["key"]: table.serve(row) for row in rows}


class ChangeFeed:
    def __init__(self, pool: Pool, database_url: str, poll_interval: float, page_size: int = PAGE_SIZE) -> None:
        self._pool = pool
        self._database_url = database_url
        self._poll_interval = poll_interval
        self._page_size = page_size
        self._wakes: set[asyncio.Event] = set()
        self._listening: asyncio.Task[None] | None = None
        self._closed = False

    def wake(self) -> None:
        """Make every follower read now (views changed, or may have)."""
        for wake in self._wakes:
            wake.set()

    async def close(self) -> None:
        """End every follower after the change it is handing out."""
        self._closed = True
        self.wake()
        await self._stop_listening()

    def _subscribe(self, wake: asyncio.Event) -> None:
        """Listen for the views' NOTIFY while anybody follows: the connection it takes is not idle."""
        self._wakes.add(wake)
        if self._listening is None:
            listening = listen_for_appends(self._database_url, self.wake, self._poll_interval, channel=CHANNEL)
            self._listening = asyncio.create_task(listening, name="changes-listener")

    async def _unsubscribe(self, wake: asyncio.Event) -> None:
        self._wakes.discard(wake)
        if not self._wakes:
            await self._stop_listening()

    async def _stop_listening(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    async def head(self) -> int:
        """The `seq` of the newest change: follow from it to get only what changes from now on."""
        head: int = await self._pool.fetchval("SELECT coalesce(max(seq), 0) FROM view_changes")
        return head

    async def page(self, after: int, limit: int) -> ChangePage:
        """The next `limit` changes after `after`, oldest first, each with the document it has now."""
        # One snapshot for the stamps and the documents: each document is the state its seq stamped.
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                "SELECT seq, entity, entity_id, position FROM view_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                after,
                limit,
            )
            documents: dict[tuple[str, str], dict[str, Any]] = {}
            for entity, table in _TABLES.items():
                keys = [row["entity_id"] for row in rows if row["entity"] == entity]
                if keys:
                    found = await _documents(conn, table, keys)
                    documents.update(((entity, key), document) for key, document in found.items())
        # A stamp without its row: the view was emptied by hand (rows are otherwise only replaced).
        changes = [
            Change(row["seq"], row["entity"], row["entity_id"], row["position"], document)
            for row in rows
            if (document := documents.get((row["entity"], row["entity_id"]))) is not None
        ]
        return ChangePage(changes, rows[-1]["seq"] if rows else after, more=len(rows) == limit)

    async def follow(self, after: int = 0) -> AsyncIterator[Change]:
        """Every change after `after`, then each new one as it commits, until the feed is closed.

        Woken by the views' NOTIFY (and `wake()`, a catch-up in this process), else polls. A reader that
        takes its changes slowly only slows its own follower: at most a page is held for it. An outage
        of the database is waited out, not raised.
        """
        wake = asyncio.Event()
        self._subscribe(wake)
        try:
            while not self._closed:
                wake.clear()
                try:
                    page = await self.page(after, self._page_size)
                except UNAVAILABLE_ERRORS as exc:
                    log.warning("cannot read changes (%s); retrying", type(exc).__name__)
                    page = ChangePage([], after, more=False)
                for change in page.changes:
                    yield change
                    if self._closed:
                        return
                after = page.last_seq
                if not page.more:
                    await woken(wake, self._poll_interval)
        finally:
            await self._unsubscribe(wake)
