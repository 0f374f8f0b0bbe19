"""What must not break: a slow database, one event the database refuses, a poison event in a
projection, a lost NOTIFY, the same notification by two routes, and the bearer token's reach."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.domain.installation import BackfillDone
from tracker.store.errors import EventRefusedError, refused_by_database
from tracker.store.event_log import NewEvent
from tracker.store.group_commit import GroupCommit
from tracker.store.locks import APPEND_LOCK

from .conftest import SECRET, MakeTracker
from .notifications import Signer, config, installation_event, new_id
from .waiting import eventually

Client = TestClient[web.Request, web.Application]


async def tracker_with_a_queue_of_two(make_tracker: MakeTracker) -> Tracker:
    tracker = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    tracker.settings = replace(tracker.settings, max_pending=2)
    await tracker.start()
    return tracker


@contextlib.asynccontextmanager
async def appends_held(database_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold the append lock from another session, as a commit that takes its time would; yield its release."""
    blocker = await asyncpg.connect(database_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
        yield transaction.rollback
    finally:
        await blocker.close()


async def test_a_full_queue_answers_503_and_the_queued_deliveries_still_land(
    make_tracker: MakeTracker, database_url: str, signer: Signer
) -> None:
    tracker = await tracker_with_a_queue_of_two(make_tracker)
    async with TestClient(TestServer(tracker.web_app())) as client, appends_held(database_url) as release:
        requests = [
            signer.signed(installation_event("read.backfill.done", new_id("i"), objectName="a")) for _ in range(5)
        ]
        posts = [asyncio.create_task(client.post("/webhooks/ampersand", data=b, headers=h)) for b, h in requests]
        done, _ = await asyncio.wait(posts, timeout=2, return_when=asyncio.FIRST_COMPLETED)
        refused = [task.result() for task in done]
        await release()
        answers = await asyncio.gather(*posts)

    assert refused, "nothing was refused while the queue was full"
    assert all(r.status == 503 and r.headers["Retry-After"] == "5" for r in refused)
    accepted = [r for r in answers if r.status == 200]
    assert len(accepted) + len(refused) == 5
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == len(accepted)


async def test_a_full_queue_refuses_before_reading_the_body(
    make_tracker: MakeTracker, database_url: str, signer: Signer
) -> None:
    """In a flood a 503 must cost little: neither the signature nor the JSON of a refused delivery is
    looked at, so a malformed one is refused like any other (its sender retries) and not quarantined."""
    tracker = await tracker_with_a_queue_of_two(make_tracker)
    async with TestClient(TestServer(tracker.web_app())) as client, appends_held(database_url) as release:
        filling: list[asyncio.Task[ClientResponse]] = []

        def post() -> None:
            body, headers = signer.signed(installation_event("read.backfill.done", new_id("i"), objectName="a"))
            filling.append(asyncio.create_task(client.post("/webhooks/ampersand", data=body, headers=headers)))

        async def both_writers_wait_for_the_lock() -> bool:
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            waiters = await tracker.pool.fetchval(waiting)
            if waiters == len(filling) < 2:
                post()  # the next only once each one before waits: each writer takes a batch of one
            return bool(waiters == 2)

        async def queue_full() -> bool:
            return tracker.webhook.overloaded

        await eventually(both_writers_wait_for_the_lock)
        post()
        post()
        await eventually(queue_full)
        body, headers = signer.signed(installation_event("read.backfill.done", new_id("i"), objectName="a"))
        not_json = await client.post("/webhooks/ampersand", data=b"{not json", headers=headers)
        unsigned = await client.post("/webhooks/ampersand", data=body)
        await release()
        stored = await asyncio.gather(*filling)

    assert (not_json.status, unsigned.status) == (503, 503)
    assert not_json.headers["Retry-After"] == "5"
    assert [response.status for response in stored] == [200] * len(filling)
    assert await tracker.pool.fetchval("SELECT count(*) FROM quarantine") == 0


async def test_ingest_waits_for_room_in_a_full_queue(make_tracker: MakeTracker) -> None:
    """An embedder that awaits `ingest` is slowed down by a full queue, not failed as a webhook would be."""
    tracker = await tracker_with_a_queue_of_two(make_tracker)
    notifications = [installation_event("read.backfill.done", new_id("i"), objectName="a") for _ in range(50)]

    appended = await asyncio.gather(*(tracker.ingest(n) for n in notifications))

    assert len({a.position for a in appended}) == 50
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 50


async def test_one_event_the_database_refuses_fails_alone(tracker: Tracker) -> None:
    commit = GroupCommit(tracker.event_log, max_batch=100, max_pending=100)
    commit.start()
    now = datetime.now(UTC)

    def event(stream_id: str) -> NewEvent:
        return NewEvent(stream_id, BackfillDone, "read.backfill.done", {"objectName": "a"}, b"{}", {}, new_id("k"), now)

    good = [event(f"installation:{new_id('i')}") for _ in range(10)]
    too_long = event("installation:" + secrets.token_hex(4000))  # beyond what a btree index entry may hold
    outcomes = await asyncio.gather(
        *(commit.append(e) for e in [*good[:5], too_long, *good[5:]]), return_exceptions=True
    )
    await commit.stop()

    assert isinstance(outcomes[5], EventRefusedError)
    assert all(not isinstance(o, BaseException) and not o.duplicate for o in outcomes[:5] + outcomes[6:])
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 10


async def test_a_nul_character_is_422_and_quarantined_and_its_neighbours_land(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    bad = orjson.dumps(installation_event("read.backfill.done", new_id("i"), objectName="a\u0000b"))
    assert b"\\u0000" in bad
    good = [signer.signed(installation_event("read.backfill.done", new_id("i"), objectName="a")) for _ in range(5)]
    answers = await asyncio.gather(
        client.post("/webhooks/ampersand", data=bad, headers=signer.headers(bad)),
        *(client.post("/webhooks/ampersand", data=b, headers=h) for b, h in good),
    )
    assert [a.status for a in answers] == [422] + [200] * 5
    assert "NUL" in (await answers[0].json())["problems"][0]
    assert await tracker.pool.fetchval("SELECT raw FROM quarantine") == bad


async def test_an_overlong_delivery_id_is_hashed_not_refused(client: Client, tracker: Tracker, signer: Signer) -> None:
    body = orjson.dumps(installation_event("read.backfill.done", new_id("i"), objectName="a"))
    headers = signer.headers(body, msg_id="m" * 5000)
    first = await client.post("/webhooks/ampersand", data=body, headers=headers)
    again = await client.post("/webhooks/ampersand", data=body, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert (await again.json())["duplicate"] is True
    assert (await tracker.pool.fetchval("SELECT dedupe_key FROM events")).startswith("sha256:")


async def test_a_poison_event_does_not_kill_the_runner(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=True)
    tracker.settings = replace(tracker.settings, projection_poll_interval=0.05)
    await tracker.start()
    # An event no projection can fold (written past validation, as a bug or an old tracker might have).
    await tracker.pool.execute(
        "INSERT INTO events (stream_id, version, type, topic, payload, raw, metadata, dedupe_key, received_at)"
        " VALUES ('installation:broken', 1, 'read.backfill.done', 'tracker.read.backfill.done',"
        " '{\"data\": {\"objectName\": \"a\"}}', '', '{}', 'poison', now())"
    )
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    await asyncio.sleep(0.3)
    runner_task = tracker.components.supervisor.task("projection-installations")
    assert runner_task is not None
    assert not runner_task.done(), "the runner died"
    assert await tracker.installation(installation_id) is None  # held back behind the poison event

    await tracker.pool.execute("DELETE FROM events WHERE dedupe_key = 'poison'")  # the operator's fix

    view = await eventually(lambda: tracker.installation(installation_id))
    assert view["installationId"] == installation_id


async def test_a_notify_wakes_the_runner_long_before_its_next_poll(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=True)
    tracker.settings = replace(tracker.settings, projection_poll_interval=60)
    await tracker.start()
    await asyncio.sleep(0.2)  # let the runners reach their wait
    installation_id = new_id("inst")
    started = time.monotonic()
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    await eventually(lambda: tracker.installation(installation_id), timeout=5)
    assert time.monotonic() - started < 5


async def test_the_same_notification_by_two_routes_is_stored_once(tracker: Tracker, tmp_path: object) -> None:
    record = {
        "metadata": {"event-id": "evt-42", "notificationType": "read.backfill.done"},
        "data": installation_event("read.backfill.done", new_id("i"), objectName="a")["data"],
    }
    first = await tracker.ingest(record)
    path = tmp_path / "again.ndjson"  # type: ignore[operator]
    path.write_bytes(orjson.dumps(record) + b"\n")
    report = await tracker.import_file(path)
    assert not first.duplicate
    assert (report.appended, report.duplicates) == (0, 1)
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 1


async def test_an_empty_event_id_is_no_dedupe_key(tracker: Tracker) -> None:
    for i in range(2):
        data = installation_event("read.backfill.done", f"inst-{i}", objectName="a")["data"]
        await tracker.ingest({"metadata": {"event-id": "", "topic": "read.backfill.done"}, "data": data})
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 2


async def test_the_timeline_pages_by_version(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    for n in range(5):
        await tracker.ingest(
            installation_event("write.async.done", installation_id, objectName="o", success=True), delivery_id=f"d{n}"
        )
    first = await (await client.get(f"/v1/installations/{installation_id}/events?limit=3")).json()
    rest = await (
        await client.get(f"/v1/installations/{installation_id}/events?limit=3&after={first['nextCursor']}")
    ).json()
    assert [e["version"] for e in first["items"]] == [1, 2, 3]
    assert [e["version"] for e in rest["items"]] == [4, 5]
    assert rest["nextCursor"] is None
    assert (await client.get(f"/v1/installations/{installation_id}/events?limit=0")).status == 400


async def test_a_signature_from_the_future_is_refused(client: Client, tracker: Tracker, signer: Signer) -> None:
    body = orjson.dumps(installation_event("read.backfill.done", new_id("i"), objectName="a"))
    response = await client.post(
        "/webhooks/ampersand", data=body, headers=signer.headers(body, timestamp=time.time() + 600)
    )
    assert response.status == 401
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 0


async def test_a_body_over_the_limit_is_413_also_when_mounted(make_tracker: MakeTracker, signer: Signer) -> None:
    tracker = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    await tracker.start()
    host = web.Application(client_max_size=8 * 1024 * 1024)
    host.add_subapp("/tracker/", tracker.web_app())
    body, headers = signer.signed(installation_event("installation.created", "inst-big", config={"x": "y" * 2_000_000}))
    async with TestClient(TestServer(host)) as client:
        assert (await client.post("/tracker/webhooks/ampersand", data=body, headers=headers)).status == 413
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize("offset", ["2026-11-03T00:00:00", "2026-11-03T01:00:00+01:00"])
async def test_triggered_read_windows_compare_across_offsets(tracker: Tracker, offset: str) -> None:
    installation_id = new_id("inst")
    newer = installation_event(
        "read.triggered.done", installation_id, objectName="a", untilTimestamp="2026-11-04T00:00:00Z"
    )
    older = installation_event(
        "read.triggered.error", installation_id, objectName="a", untilTimestamp=offset, error="x"
    )
    await tracker.ingest(newer)
    await tracker.ingest(older)
    await tracker.catch_up()
    view = await tracker.installation(installation_id)
    assert view is not None
    assert view["objects"]["a"]["lastTriggeredRead"]["status"] == "done"


def test_only_data_the_database_will_never_take_is_refused() -> None:
    assert refused_by_database(asyncpg.DataError("bad"))
    assert refused_by_database(asyncpg.UniqueViolationError("dup"))
    assert refused_by_database(asyncpg.ProgramLimitExceededError("too big"))
    for passing in (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError, asyncpg.DiskFullError,
                    asyncpg.ReadOnlySQLTransactionError, asyncpg.DeadlockDetectedError):  # fmt: skip
        assert not refused_by_database(passing("retry later")), passing
