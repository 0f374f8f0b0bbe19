"""The runner against a real PostgreSQL: it follows the log, never skips a late commit, and a rebuild
reproduces the live read models exactly."""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
import pytest
from eventsourcing.application import project_aggregate

from projections.installations import INSTALLATIONS
from tracker import Tracker
from tracker.domain import Installation
from tracker.ingest.parsing import parse_object
from tracker.ingest.pipeline import Delivery, new_event
from tracker.projecting.runner import ProjectionRunner
from tracker.store.event_log import NewEvent

from .conftest import MakeTracker, with_database
from .notifications import config, connection_fields, installation_event, new_id, notification
from .waiting import eventually

VIEW_TABLES = ("installation_view", "connection_view", "destination_view")


def story(installation_id: str, connection_id: str) -> list[dict[str, Any]]:
    """A realistic life of one installation and its connection, out of order in places."""
    conn = connection_fields(connection_id)

    def event(kind: str, **extra: Any) -> dict[str, Any]:
        return installation_event(kind, installation_id, connectionId=connection_id, **extra)

    return [
        event("read.backfill.done", objectName="account"),  # arrives before the creation
        event("installation.created", config=config()),
        notification("connection.created", **conn),
        event("read.triggered.done", objectName="account", untilTimestamp="2026-11-02T00:00:00Z"),
        event("read.triggered.error", objectName="account", untilTimestamp="2026-11-01T00:00:00Z", error="old"),
        event("write.async.done", objectName="contact", success=False, successfulRecordIds=["1"], errors=["bad"]),
        notification("connection.error", **conn, errors=["invalid_grant"]),
        event("read.schedule.paused", config=config(), error="Authentication failed"),
        event("installation.updated", config=config(("account", "contact")), lastConfig=config()),
        notification(
            "destination.webhook.disabled",
            projectId="proj-1",
            destinationId=f"dest-{installation_id}",
            destinationName="main-webhook",
            url="https://x",
        ),
    ]


async def snapshot(tracker: Tracker) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row, as a digest-friendly structure."""
    tables = {}
    for table in VIEW_TABLES:
        rows = await tracker.pool.fetch(f"SELECT * FROM {table} ORDER BY 1")
        tables[table] = [tuple(row.values()) for row in rows]
    return tables


def digest(tables: dict[str, list[tuple[Any, ...]]]) -> str:
    return hashlib.sha256(orjson.dumps(tables, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


async def test_the_live_runner_follows_the_log(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=True)
    await tracker.start()
    installation_id = new_id("inst")
    assert await tracker.installation(installation_id) is None  # before
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    view = await eventually(lambda: tracker.installation(installation_id))
    assert view["configVersion"] == 1
    status = await eventually(lambda: _caught_up(tracker))
    assert status["events"] == 1


async def _caught_up(tracker: Tracker) -> dict[str, Any] | None:
    status = await tracker.status()
    return status if all(p["lag"] == 0 for p in status["projections"]) else None


@pytest.mark.parametrize("batch_size", [3, 1000])  # 3: streams straddle pages, live and in the rebuild
async def test_a_rebuild_reproduces_the_live_read_models_exactly(make_tracker: MakeTracker, batch_size: int) -> None:
    tracker = make_tracker(follow_projections=True)
    tracker.settings = replace(tracker.settings, projection_batch_size=batch_size)
    await tracker.start()
    for i in range(5):
        for payload in story(f"inst-{i}", f"conn-{i % 2}"):
            await tracker.ingest(payload)
    await eventually(lambda: _caught_up(tracker))
    live = await snapshot(tracker)
    assert len(live["installation_view"]) == 5
    assert len(live["connection_view"]) == 2
    assert len(live["destination_view"]) == 5

    folded = await tracker.rebuild()

    # Without a delivery id, equal bodies are one delivery: conn-0's `connection.created` is stored once.
    assert folded == {"installations": 35, "connections": 4, "destinations": 5, "alert_subscriptions": 0}
    assert digest(await snapshot(tracker)) == digest(live)


async def test_rebuild_refuses_an_unknown_read_model(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match="unknown read model"):
        await tracker.rebuild(["nope"])


async def test_a_runner_never_passes_an_event_that_commits_late(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False)
    await tracker.start()
    runner = ProjectionRunner(tracker.pool, INSTALLATIONS, batch_size=100)
    late, early = new_id("late"), new_id("early")

    async with tracker.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        # A writer that took its position first but commits last.
        event = _new_event(installation_event("read.backfill.done", late, objectName="a"))
        await tracker.event_log.append_on(conn, [event], [event.to_stored(tracker.event_log.mapper)])
        second = asyncio.create_task(tracker.ingest(installation_event("read.backfill.done", early, objectName="a")))
        done, _ = await asyncio.wait({second}, timeout=0.5)
        await runner.run_batch()  # while the first writer is still open
        await transaction.commit()
    await second
    await runner.catch_up()

    assert not done, "a second append committed while an earlier one was open: positions could commit out of order"
    assert await tracker.installation(late) is not None
    assert await tracker.installation(early) is not None


def _new_event(payload: dict[str, Any]) -> NewEvent:
    return new_event(parse_object(payload), Delivery("test", orjson.dumps(payload), new_id("key")))


async def test_concurrent_trackers_append_without_loss_and_the_follower_folds_everything(
    make_tracker: MakeTracker,
) -> None:
    follower = make_tracker(follow_projections=True)
    await follower.start()
    writers = [make_tracker(follow_projections=False) for _ in range(3)]
    for writer in writers:
        await writer.start()
    installation_ids = [f"inst-{i}" for i in range(10)]
    rng = random.Random(7)
    plan = [
        (rng.choice(writers), installation_event("write.async.done", rng.choice(installation_ids), objectName="o",
                                                 success=True, successfulRecordIds=[str(n)]))
        for n in range(300)
    ]  # fmt: skip

    await asyncio.gather(*(writer.ingest(payload) for writer, payload in plan))
    await eventually(lambda: _caught_up(follower))

    versions = await follower.pool.fetch(
        "SELECT stream_id, array_agg(version ORDER BY version) AS versions FROM events GROUP BY stream_id"
    )
    for row in versions:
        assert row["versions"] == list(range(1, len(row["versions"]) + 1)), row["stream_id"]
    assert sum(len(row["versions"]) for row in versions) == 300
    total = 0
    for installation_id in installation_ids:
        view = await follower.installation(installation_id)
        total += view["objects"]["o"]["writes"]["operations"] if view else 0
    assert total == 300
    live = await snapshot(follower)
    await follower.rebuild()
    assert digest(await snapshot(follower)) == digest(live)


async def test_the_library_reconstitutes_an_installation_from_its_stream(tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    await tracker.ingest(installation_event("read.backfill.done", installation_id, objectName="account"))
    await tracker.ingest(installation_event("installation.deleted", installation_id, config=config()))

    events = await tracker.event_log.domain_events(f"installation:{installation_id}")
    aggregate = project_aggregate(None, events)

    assert isinstance(aggregate, Installation)
    assert aggregate.id == f"installation:{installation_id}"
    assert aggregate.version == 3
    assert aggregate.deleted is True
    assert aggregate.config == config()
    assert aggregate.identity["groupName"] == "Acme"
    assert [type(e).TOPIC for e in events] == [
        "tracker.installation.created", "tracker.read.backfill.done", "tracker.installation.deleted",
    ]  # fmt: skip


async def test_a_runner_never_folds_onto_a_view_another_process_has_moved_on(make_tracker: MakeTracker) -> None:
    first, second = make_tracker(follow_projections=False), make_tracker(follow_projections=False)
    await first.start()
    await second.start()
    installation_id = new_id("inst")

    def write(n: int) -> dict[str, Any]:
        return installation_event("write.async.done", installation_id, objectName="o", success=True, n=n)

    await first.ingest(write(1))
    await first.catch_up()  # the first tracker's runner now keeps this view in memory
    await second.ingest(write(2))
    await second.catch_up()  # another process folds the next event
    await first.ingest(write(3))
    await first.catch_up()

    view = await first.installation(installation_id)
    assert view is not None
    assert view["objects"]["o"]["writes"]["operations"] == 3


async def test_a_rebuild_finds_every_stream_under_a_linguistic_collation(server_url: str, tmp_path: Any) -> None:
    """A linguistic collation ignores punctuation: 'installation;' sorts before 'installation:abc' there."""
    name = f"tracker_icu_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'")
    except asyncpg.FeatureNotSupportedError:
        await admin.close()
        pytest.skip("this PostgreSQL has no ICU collations (the embedded one is built without ICU)")
    try:
        async with Tracker(database_url=with_database(server_url, name), follow_projections=False) as tracker:
            assert await tracker.pool.fetchval("SELECT 'installation:abc' < 'installation;'") is False
            await tracker.ingest(installation_event("installation.created", "inst-icu", config=config()))
            folded = await tracker.rebuild(["installations"])
            assert folded == {"installations": 1}
            assert await tracker.installation("inst-icu") is not None
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


async def test_the_runners_of_one_process_take_turns(make_tracker: MakeTracker) -> None:
    """A runner waits for its process's turn (handed over at once) before it asks PostgreSQL for the lock."""
    tracker = make_tracker(follow_projections=False)
    await tracker.start()
    await tracker.ingest(installation_event("read.backfill.done", new_id("inst"), objectName="a"))
    turn = asyncio.Lock()
    runner = ProjectionRunner(tracker.pool, INSTALLATIONS, batch_size=100, turn=turn)

    async with turn:  # another read model of this process is folding
        folding = asyncio.create_task(runner.run_batch())
        done, _ = await asyncio.wait({folding}, timeout=0.3)
        assert not done
    assert await asyncio.wait_for(folding, 5) == 1
