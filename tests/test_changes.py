"""The change feed: states in commit order, with their documents, over `Tracker.changes()` and SSE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import ClientResponse, ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.api.changes import STREAMS
from tracker.store.changes import Change, ChangeFeed, ChangePage

from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_event, installation_fields, new_id, notification
from .waiting import eventually

Client = TestClient[web.Request, web.Application]


async def all_changes(tracker: Tracker, after: int = 0) -> list[Change]:
    page = await tracker.change_feed.page(after, 1000)
    assert not page.more
    return page.changes


def keys(changes: list[Change]) -> list[tuple[str, str]]:
    return [(change.entity, change.entity_id) for change in changes]


async def test_the_feed_from_zero_is_each_entity_once_in_its_latest_state(tracker: Tracker) -> None:
    installation_id, connection_id = new_id("inst"), new_id("conn")
    assert await all_changes(tracker) == []  # before
    fields = installation_fields(installation_id, connection_id=connection_id)
    await tracker.ingest(notification("installation.created", **fields, config=config(("account",))))
    await tracker.ingest(notification("connection.created", **connection_fields(connection_id)))
    await tracker.catch_up()
    await tracker.ingest(
        notification(
            "installation.updated", **fields, config=config(("account", "contact")), lastConfig=config(("account",))
        )
    )
    await tracker.catch_up()

    changes = await all_changes(tracker)
    assert sorted(keys(changes)) == [("connection", connection_id), ("installation", installation_id)]
    seqs = [change.seq for change in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    installation = next(change for change in changes if change.entity == "installation")
    assert installation.document == await tracker.installation(installation_id)
    assert installation.document["configVersion"] == 2  # the update, not the state before it
    assert installation.position == installation.document["position"] == (await tracker.event_log.head())
    assert installation.to_json()["entityId"] == installation_id


async def test_a_connection_error_is_also_a_change_of_each_installation_on_it(tracker: Tracker) -> None:
    on_it, elsewhere, connection_id = new_id("inst"), new_id("inst"), new_id("conn")
    await tracker.ingest(installation_event("installation.created", on_it, connectionId=connection_id, config=config()))
    await tracker.ingest(installation_event("installation.created", elsewhere, config=config()))
    await tracker.catch_up()
    head = await tracker.change_feed.head()

    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await tracker.catch_up()

    changes = await all_changes(tracker, head)
    assert sorted(keys(changes)) == [("connection", connection_id), ("installation", on_it)]
    connection, installation = sorted(changes, key=lambda change: change.entity)
    assert installation.document["health"]["status"] == "unhealthy"
    assert [r["code"] for r in installation.document["health"]["reasons"]] == ["connection_error"]
    # Its position stays its own last event's; the connection's event is the connection's.
    assert installation.position == installation.document["position"] < connection.position


async def test_a_disabled_destination_is_a_change_of_the_installations_naming_it_only(tracker: Tracker) -> None:
    named, other = new_id("inst"), new_id("inst")
    await tracker.ingest(installation_event("installation.created", named, config=config(destination="crm-hook")))
    await tracker.ingest(installation_event("installation.created", other, config=config(destination="other-hook")))
    await tracker.catch_up()
    head = await tracker.change_feed.head()

    destination = {"projectId": "proj-1", "destinationId": new_id("dest"), "destinationName": "crm-hook"}
    await tracker.ingest(notification("destination.webhook.disabled", **destination, url="https://crm.example/h"))
    await tracker.catch_up()

    changes = await all_changes(tracker, head)
    assert sorted(keys(changes)) == [("destination", destination["destinationId"]), ("installation", named)]


async def test_a_rewrite_that_changes_nothing_is_no_change(tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    await tracker.catch_up()
    await tracker.ingest(
        notification(
            "destination.webhook.disabled", projectId="proj-1", destinationId=new_id("dest"),
            destinationName="main-webhook", url="https://x.example/h",
        )
    )  # fmt: skip
    await tracker.catch_up()
    head = await tracker.change_feed.head()
    assert head == 3  # the installation, the destination, the installation again: unhealthy now

    # The destination fan-out of sql/006 rewrites the installation's joined column as it was.
    await tracker.pool.execute("UPDATE destination_view SET disabled = disabled")
    await tracker.pool.execute("UPDATE installation_view SET doc = doc")
    assert await tracker.change_feed.head() == head
    await tracker.rebuild()  # the same logic: the switch-over writes nothing
    assert await tracker.change_feed.head() == head

    # A document changed under the same position (a new logic version's rebuild) is a change.
    await tracker.pool.execute("UPDATE installation_view SET doc = doc || '{\"note\": 1}'")
    (change,) = await all_changes(tracker, head)
    assert (change.entity, change.entity_id, change.document["note"]) == ("installation", installation_id, 1)


async def test_a_follower_gets_each_change_as_it_commits_and_resumes_after_a_seq(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=True)
    await tracker.start()
    first, second = new_id("inst"), new_id("inst")
    seen: list[Change] = []

    async def collect(after: int) -> None:
        async for change in tracker.changes(after):
            seen.append(change)

    async def seen_ids() -> list[str]:
        return [change.entity_id for change in seen]

    async def seen_two() -> bool:
        return len(seen) >= 2

    following = asyncio.create_task(collect(await tracker.change_feed.head()))
    await tracker.ingest(installation_event("installation.created", first, config=config()))
    assert await eventually(seen_ids) == [first]
    await tracker.ingest(installation_event("installation.created", second, config=config()))
    await eventually(seen_two)
    assert await seen_ids() == [first, second]

    resumed = tracker.changes(after=seen[0].seq)
    assert (await anext(resumed)).entity_id == second
    await resumed.aclose()

    await tracker.close()  # ends every follower
    await asyncio.wait_for(following, 10)


async def test_a_process_that_does_not_fold_hears_of_changes_from_the_one_that_does(
    make_tracker: MakeTracker,
) -> None:
    """`tracker serve` folds in a child process by default: its streams are woken by the views' NOTIFY."""
    web = make_tracker(follow_projections=False)
    web.settings = replace(web.settings, projection_poll_interval=300.0)  # so only a NOTIFY can wake it in time
    await web.start()
    folding = make_tracker(follow_projections=True)
    await folding.start()
    installation_id = new_id("inst")
    follower = web.changes(after=await web.change_feed.head())
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0)  # subscribed: its first read found nothing
    await web.ingest(installation_event("installation.created", installation_id, config=config()))
    change = await asyncio.wait_for(first, 20)
    assert (change.entity, change.entity_id) == ("installation", installation_id)
    await follower.aclose()


class CountingFeed(ChangeFeed):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages = 0

    async def page(self, after: int, limit: int) -> ChangePage:
        self.pages += 1
        return await super().page(after, limit)


async def test_a_slow_reader_holds_one_page_not_the_whole_feed(tracker: Tracker) -> None:
    for _ in range(25):
        await tracker.ingest(installation_event("installation.created", new_id("inst"), config=config()))
    await tracker.catch_up()
    feed = CountingFeed(tracker.pool, tracker.database_url, poll_interval=0.01, page_size=10)
    follower = feed.follow(0)
    taken = [await anext(follower) for _ in range(11)]
    assert feed.pages == 2  # nothing is read ahead of the reader
    assert [c.seq for c in taken] == list(range(1, 12))
    await follower.aclose()


# ---- over HTTP ---------------------------------------------------------------------------------------


async def sse_events(response: ClientResponse) -> AsyncIterator[dict[str, str]]:
    """Parse a text/event-stream into its events (comments skipped), each a dict of its fields."""
    event: dict[str, str] = {}
    while line := await response.content.readline():
        text = line.decode().rstrip("\r\n")
        if not text:
            if event:
                yield event
            event = {}
        elif not text.startswith(":"):
            name, _, value = text.partition(":")
            event[name] = value.removeprefix(" ")


async def next_change(events: AsyncIterator[dict[str, str]]) -> dict[str, str]:
    """The next event that carries a change (not the stream's opening `retry`/`id`)."""
    while True:
        event = await asyncio.wait_for(anext(events), 10)
        if "data" in event:
            return event


async def test_the_stream_sends_each_change_with_its_seq_as_id_and_resumes_from_last_event_id(
    client: Client, tracker: Tracker
) -> None:
    created = [new_id("inst") for _ in range(3)]
    for installation_id in created:
        await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    await tracker.catch_up()

    async with client.get("/v1/changes?after=0") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(response)
        opening = await anext(events)
        assert opening["id"] == "0"  # a reconnect before any change resumes where it began
        first = await next_change(events)
    data = orjson.loads(first["data"])
    assert (first["event"], first["id"]) == ("installation", str(data["seq"]))
    assert data["entityId"] == created[0]
    assert data["document"]["installationId"] == created[0]

    # An EventSource reconnecting sends Last-Event-ID, which wins over the URL's `after`.
    async with client.get("/v1/changes?after=0", headers={"Last-Event-ID": first["id"]}) as response:
        events = sse_events(response)
        resumed = [orjson.loads((await next_change(events))["data"])["entityId"] for _ in range(2)]
    assert resumed == created[1:]


async def test_without_a_start_the_stream_sends_only_what_changes_from_now(client: Client, tracker: Tracker) -> None:
    old, new = new_id("inst"), new_id("inst")
    await tracker.ingest(installation_event("installation.created", old, config=config()))
    await tracker.catch_up()
    head = await tracker.change_feed.head()
    async with client.get("/v1/changes") as response:
        events = sse_events(response)
        assert (await anext(events))["id"] == str(head)
        await tracker.ingest(installation_event("installation.created", new, config=config()))
        await tracker.catch_up()  # wakes the feed in this process
        change = await next_change(events)
    assert orjson.loads(change["data"])["entityId"] == new
    assert int(change["id"]) > head


async def test_a_bad_start_is_400(client: Client) -> None:
    for headers, path in (({}, "/v1/changes?after=-1"), ({}, "/v1/changes?after=x"), ({"Last-Event-ID": "1.5"}, "")):
        response = await client.get(path or "/v1/changes", headers=headers)
        assert response.status == 400, path
        assert "integer" in (await response.json())["error"]


async def test_the_stream_needs_the_token(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token="s3cret")
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        assert (await client.get("/v1/changes")).status == 401
        async with client.get("/v1/changes", headers={"Authorization": "Bearer s3cret"}) as response:
            assert response.status == 200
            assert "id" in await anext(sse_events(response))


async def test_shutting_the_server_down_ends_open_streams(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False)
    await tracker.start()
    app = tracker.web_app()
    server = TestServer(app)
    await server.start_server()
    async with ClientSession() as session, session.get(server.make_url("/v1/changes")) as response:
        await anext(sse_events(response))
        assert len(app[STREAMS]) == 1
        # Without ending its streams, the server would wait out its shutdown timeout (a minute) for them.
        await asyncio.wait_for(server.close(), 20)
        assert not app[STREAMS]
        assert await response.content.read() == b""  # the stream ended cleanly, as a stream does
