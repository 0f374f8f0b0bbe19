"""The change feed: each installation, connection and destination whose state changed, with its document.

`sql/013_changes.sql` stamps a row of `view_changes` with the next `seq` whenever a view changes, in
commit order; a reader pages through `seq > after`. It is a feed of states, not of events: an entity
that changed twice between two reads comes once, in its latest state.

One reader per process reads the head of the feed, one page per wake-up however many follow it, and
hands each page to the followers it concerns; a follower that is behind (it resumes, or was slow to
take a page) reads alone until it is back at the head. A follower limited to projects is woken only by
a change of one of them, so a follower whose projects see nothing costs nothing while others change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from tracker.store import views
from tracker.store.database import Connection, Pool
from tracker.store.errors import UNAVAILABLE_ERRORS
from tracker.store.listener import listen_for_appends
from tracker.store.views import ViewTable
from tracker.wake import follow, woken

log = logging.getLogger(__name__)

CHANNEL = "tracker_view_changes"
"""Notified by the stamping trigger once the views changed (on commit)."""
PAGE_SIZE = 100
"""Changes read per query: what a follower holds in memory while a slow reader takes them."""
MIN_READ_INTERVAL = 0.025
"""The shared reader reads at most this often: under load, one read takes many commits' changes, as the
runners fold many commits' events (`Settings.projection_min_interval`)."""

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

    @property
    def project_id(self) -> object:
        return self.document.get("projectId")

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


@dataclass(frozen=True, slots=True, eq=False)
class _SharedPage:
    """A page the shared reader read: every change in (after, last_seq] as one snapshot had it."""

    after: int
    last_seq: int
    changes: list[Change]
    projects: frozenset[str] | None
    """The projects whose documents it holds (those of its followers when it began); None: every one."""


@dataclass(slots=True, eq=False)
class _Follower:
    projects: frozenset[str] | None
    """Whose changes it takes; None: every project's."""
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    shared: _SharedPage | None = None
    """The shared page that woke it; None: woken to read alone, or to end."""
    parked: bool = False

    def covered_by(self, shared: _SharedPage) -> bool:
        """Whether `shared` holds every change this follower takes in its range."""
        return shared.projects is None or (self.projects is not None and self.projects <= shared.projects)

    def wants(self, change: Change) -> bool:
        return self.projects is None or change.project_id in self.projects


async def _documents(
    conn: Connection, table: ViewTable, keys: list[str], projects: frozenset[str] | None
) -> dict[str, dict[str, Any]]:
    args: list[Any] = [keys]
    where = f"WHERE v.{table.key_column} = ANY($1::text[])"
    if projects is not None:
        where += " AND v.project_id = ANY($2::text[])"
        args.append(list(projects))
    select = f"SELECT v.{table.key_column} AS key, v.doc {table.joins or f'FROM {table.table} v'}"
    rows = await conn.fetch(f"{select} {where}", *args)
    return {row["key"]: table.serve(row) for row in rows}


class ChangeFeed:
    def __init__(self, pool: Pool, database_url: str, poll_interval: float, page_size: int = PAGE_SIZE) -> None:
        self._pool = pool
        self._database_url = database_url
        self._poll_interval = poll_interval
        self._page_size = page_size
        self.shared_reads = 0
        """Pages the shared reader has read: one per wake-up (and per further page), whoever follows."""
        self._unscoped = 0
        """Followers of every project..."""
        self._scoped: Counter[str] = Counter()
        """...and of each project: whose documents the shared reader reads."""
        self._parked_unscoped: set[_Follower] = set()
        self._parked_by_project: dict[str, set[_Follower]] = {}
        self._joined: list[_Follower] = []
        """Followers that came while the shared reader read: the read may not hold their projects."""
        self._current: _SharedPage | None = None
        """The shared reader's newest read; None until it knows the head."""
        self._started = asyncio.Event()
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Make the shared reader read now (views changed, or may have)."""
        self._wake.set()

    async def close(self) -> None:
        """End every follower after the change it is handing out."""
        self._closing.set()
        self._started.set()
        for follower in [*self._parked_unscoped, *(f for fs in self._parked_by_project.values() for f in fs)]:
            self._rouse(follower, None)
        await self._stop_reading()

    async def head(self) -> int:
        """The `seq` of the newest change: follow from it to get only what changes from now on."""
        head: int = await self._pool.fetchval("SELECT coalesce(max(seq), 0) FROM view_changes")
        return head

    async def page(self, after: int, limit: int) -> ChangePage:
        """The next `limit` changes after `after`, oldest first, each with the document it has now."""
        return await self._page_of(after, limit, None)

    async def _page_of(self, after: int, limit: int, projects: frozenset[str] | None) -> ChangePage:
        """`page`, with the documents of `projects` only (None: all): another project's change is skipped."""
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
                    found = await _documents(conn, table, keys, projects)
                    documents.update(((entity, key), document) for key, document in found.items())
        # A stamp without its row: the view was emptied by hand (rows are otherwise only replaced).
        changes = [
            Change(row["seq"], row["entity"], row["entity_id"], row["position"], document)
            for row in rows
            if (document := documents.get((row["entity"], row["entity_id"]))) is not None
        ]
        return ChangePage(changes, rows[-1]["seq"] if rows else after, more=len(rows) == limit)

    async def follow(self, after: int = 0, projects: frozenset[str] | None = None) -> AsyncGenerator[Change, None]:
        """Every change after `after` (of `projects` only, unless None), then each new one as it commits,
        until the feed is closed.

        At the head it takes the shared reader's pages, woken by the views' NOTIFY (and `wake()`, a
        catch-up in this process), else by its poll. A reader that takes its changes slowly only slows
        its own follower: at most a page is held for it. An outage of the database is waited out, not raised.
        """
        follower = _Follower(projects)
        self._join(follower)
        try:
            shared: _SharedPage | None = None  # the page that woke the follower: taken before the head's
            while not self._closing.is_set():
                if shared is None:
                    shared = self._current
                if shared is None:
                    await self._started.wait()
                    continue
                if after < shared.last_seq and (after < shared.after or not follower.covered_by(shared)):
                    page = await self._read_alone(after)  # behind the shared reader, or outside what it read
                else:
                    page = ChangePage(shared.changes, shared.last_seq, more=False)
                for change in page.changes:
                    if change.seq > after and follower.wants(change):
                        yield change
                        if self._closing.is_set():
                            return
                after, shared = max(after, page.last_seq), None
                current = self._current
                if page.more or current is None or after < current.last_seq:
                    continue  # more to take at once
                shared = await self._park(follower)
                if shared is not None:  # every page read since it parked held nothing of its projects
                    after = max(after, shared.after)
        finally:
            await self._leave(follower)

    async def _read_alone(self, after: int) -> ChangePage:
        try:
            return await self.page(after, self._page_size)
        except UNAVAILABLE_ERRORS as exc:
            log.warning("cannot read changes (%s); retrying", type(exc).__name__)
            await woken(self._closing, self._poll_interval)
            return ChangePage([], after, more=False)

    def _join(self, follower: _Follower) -> None:
        """Count the follower in what the shared reader reads; start reading (and listening) for the first.

        The LISTEN takes a connection of its own, not an idle one: it is held only while anybody follows.
        """
        if follower.projects is None:
            self._unscoped += 1
        else:
            self._scoped.update(follower.projects)
        self._joined.append(follower)
        if not self._tasks:
            listening = listen_for_appends(self._database_url, self.wake, self._poll_interval, channel=CHANNEL)
            self._tasks = [
                asyncio.create_task(listening, name="changes-listener"),
                asyncio.create_task(self._read_forever(), name="changes-reader"),
            ]

    async def _leave(self, follower: _Follower) -> None:
        self._unpark(follower)
        if follower.projects is None:
            self._unscoped -= 1
        else:
            self._scoped -= Counter(follower.projects)
        if not self._unscoped and not self._scoped:
            await self._stop_reading()

    async def _stop_reading(self) -> None:
        tasks, self._tasks = self._tasks, []
        self._current = None
        if not self._closing.is_set():
            self._started.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _park(self, follower: _Follower) -> _SharedPage | None:
        """Wait, at the head, for a shared page with a change the follower takes (or one that may lack its projects)."""
        follower.woken.clear()
        follower.shared = None
        follower.parked = True
        if follower.projects is None:
            self._parked_unscoped.add(follower)
        else:
            for project in follower.projects:
                self._parked_by_project.setdefault(project, set()).add(follower)
        try:
            await follower.woken.wait()
        finally:
            self._unpark(follower)
        return follower.shared

    def _unpark(self, follower: _Follower) -> None:
        if not follower.parked:
            return
        follower.parked = False
        if follower.projects is None:
            self._parked_unscoped.discard(follower)
            return
        for project in follower.projects:
            parked = self._parked_by_project[project]
            parked.discard(follower)
            if not parked:
                del self._parked_by_project[project]

    def _rouse(self, follower: _Follower, shared: _SharedPage | None) -> None:
        self._unpark(follower)
        follower.shared = shared
        follower.woken.set()

    def _publish(self, shared: _SharedPage) -> None:
        """Make `shared` the head, and wake the parked followers it concerns; the others stay parked, as if
        they had taken it (it holds nothing of theirs)."""
        self._current = shared
        for follower in self._joined:
            if follower.parked and not follower.covered_by(shared):
                self._rouse(follower, None)
        if not shared.changes:
            return
        for follower in list(self._parked_unscoped):
            self._rouse(follower, shared)
        for project in self._parked_by_project.keys() & {change.project_id for change in shared.changes}:
            for follower in list(self._parked_by_project[project]):
                self._rouse(follower, shared)

    async def _read_forever(self) -> None:
        await follow(
            self._read_to_head,
            self._wake,
            poll_interval=self._poll_interval,
            min_interval=MIN_READ_INTERVAL,
            log=log,
            what="reading the changes",
        )

    async def _read_to_head(self) -> None:
        """Read the head of the feed for every follower, page after page until one is not full."""
        if self._current is None:
            position = await self.head()
            self._publish(_SharedPage(position, position, [], None))
            self._started.set()
        while self._current is not None:
            position = self._current.last_seq
            self._joined = []  # those following now are counted in the projects read
            projects = None if self._unscoped else frozenset(self._scoped)
            page = await self._page_of(position, self._page_size, projects)
            self.shared_reads += 1
            if page.last_seq > position:
                self._publish(_SharedPage(position, page.last_seq, page.changes, projects))
            if not page.more:
                return
