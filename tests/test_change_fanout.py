"""The change feed's shared reader and the cap on streams: followers at the head share one page query per
wake-up, one limited to projects is handed only their changes, and a process holds at most
`max_change_streams` streams open."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.api import changes as changes_api
from tracker.store.changes import Change, ChangeFeed, ChangePage

from .conftest import MakeTracker
from .notifications import config, installation_event, new_id
from .test_changes import sse_events
from .waiting import eventually

IDLE = frozenset({"proj-idle"})
"""A project nothing is ever written to."""


class CountingFeed(ChangeFeed):
    """Counts the pages followers read alone, apart from the shared reader's (`shared_reads`), and notes how
    far the reads have got."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages = 0
        self.read_to = 0

    async def page(self, after: int, limit: int) -> ChangePage:
        self.pages += 1
        return await super().page(after, limit)

    async def _page_of(self, after: int, limit: int, projects: frozenset[str] | None) -> ChangePage:
        page = await super()._page_of(after, limit, projects)
        self.read_to = max(self.read_to, page.last_seq)
        return page


async def read_to(feed: CountingFeed, seq: int) -> bool:
    return feed.read_to >= seq


@contextlib.asynccontextmanager
async def counting_feed(tracker: Tracker) -> AsyncIterator[CountingFeed]:
    # Only a NOTIFY or `wake()` makes it read within the test: each read is one the test caused.
    feed = CountingFeed(tracker.pool, tracker.database_url, poll_interval=300.0)
    try:
        yield feed
    finally:
        await feed.close()


class Collector:
    """Takes every change a follower hands out, in a task of its own."""

    def __init__(self, changes: AsyncIterator[Change]) -> None:
        self.seen: list[Change] = []
        self._task = asyncio.create_task(self._take(changes))

    async def _take(self, changes: AsyncIterator[Change]) -> None:
        async for change in changes:
            self.seen.append(change)

    def ids(self) -> list[str]:
        return [change.entity_id for change in self.seen]

    async def took(self, entity_id: str) -> bool:
        return entity_id in self.ids()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def create(tracker: Tracker, project_id: str) -> str:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, projectId=project_id,
                                            config=config()))  # fmt: skip
    await tracker.catch_up()
    return installation_id


async def test_idle_followers_share_the_reads_and_a_scoped_one_gets_only_its_projects(tracker: Tracker) -> None:
    async with counting_feed(tracker) as feed:
        everything = Collector(feed.follow(await feed.head()))
        first = await create(tracker, "proj-a")
        feed.wake()
        await eventually(partial(everything.took, first))  # the shared reader reads: the others start at its head
        head = await feed.head()
        idle = [Collector(feed.follow(head, IDLE)) for _ in range(50)]
        mine = Collector(feed.follow(head, frozenset({"proj-a"})))
        pages_before, reads_before = feed.pages, feed.shared_reads

        created = []
        for project_id in ("proj-a", "proj-b", "proj-a"):
            created.append(await create(tracker, project_id))
            feed.wake()
            await eventually(partial(everything.took, created[-1]))

        assert everything.ids() == [first, *created]
        assert mine.ids() == [created[0], created[2]]
        assert [collector.seen for collector in idle] == [[]] * 50
        assert feed.pages == pages_before  # not one follower read alone
        # A read per wake-up and per NOTIFY (one a commit of the catch-up), however many follow: not 52 each.
        assert feed.shared_reads - reads_before <= 3 * 4
        for collector in [everything, mine, *idle]:
            await collector.stop()


async def test_a_follower_outside_what_the_shared_reader_read_reads_alone(tracker: Tracker) -> None:
    """While only followers of an idle project follow, the shared reader reads no other project's documents;
    a follower of every project that starts behind it must not take its pages for complete."""
    async with counting_feed(tracker) as feed:
        idle = Collector(feed.follow(await feed.head(), IDLE))
        before = await feed.head()
        other = await create(tracker, "proj-b")
        stamped = await feed.head()
        feed.wake()
        await eventually(partial(read_to, feed, stamped))
        assert idle.seen == []

        joining = feed.follow(before)
        assert (await asyncio.wait_for(anext(joining), 10)).entity_id == other
        assert feed.pages >= 1
        await joining.aclose()
        await idle.stop()


async def test_a_follower_that_joins_later_gets_its_projects_from_the_shared_reader(tracker: Tracker) -> None:
    async with counting_feed(tracker) as feed:
        idle = Collector(feed.follow(await feed.head(), IDLE))
        await create(tracker, "proj-b")
        head = await feed.head()
        feed.wake()
        await eventually(partial(read_to, feed, head))
        joined = Collector(feed.follow(head, frozenset({"proj-c"})))
        pages = feed.pages

        created = await create(tracker, "proj-c")
        feed.wake()
        await eventually(partial(joined.took, created))
        assert joined.ids() == [created]
        assert idle.seen == []
        assert feed.pages <= pages + 1  # at most a read alone from where it joined, then the shared reader's
        await joined.stop()
        await idle.stop()


async def test_past_the_cap_a_stream_is_503_and_a_closed_one_frees_its_slot(
    make_tracker: MakeTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An idle stream learns that its client went at its next keep-alive: make that soon.
    monkeypatch.setattr(changes_api, "PING_INTERVAL", 0.1)
    tracker = make_tracker(follow_projections=False)
    tracker.settings = replace(tracker.settings, max_change_streams=2)
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        first, second = await client.get("/v1/changes"), await client.get("/v1/changes")
        assert (first.status, second.status) == (200, 200)
        for response in (first, second):
            assert "id" in await anext(sse_events(response))

        refused = await client.get("/v1/changes")
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "10"
        assert "retry later" in (await refused.json())["error"]

        first.close()

        async def reopened() -> int:
            response = await client.get("/v1/changes")
            if response.status != 200:
                response.release()
                return 0
            response.close()
            return response.status

        assert await eventually(reopened) == 200
        second.close()
