"""Blue/green rebuilds: reads keep the live rows until one switch-over that writes only what differs, one
rebuild per read model at a time, and a read model whose logic has a newer version is rebuilt at start."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from projections import CONNECTIONS, DESTINATIONS, INSTALLATIONS
from projections.installations import InstallationView
from tracker import Tracker
from tracker.domain.recorded import Recorded
from tracker.projecting import rebuild, replay
from tracker.projecting.rebuild import Progress, RebuildRunningError
from tracker.projecting.replay import OnPage, StreamRange
from tracker.settings import Settings
from tracker.store.locks import HEALTH_LOCK, rebuild_lock_key

from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_event, new_id, notification
from .waiting import eventually


def _marked(view: InstallationView | None, event: Recorded) -> InstallationView | None:
    """Version 2 of the installations logic: the same, plus a mark no event sets."""
    view = INSTALLATIONS.evolve(view, event)
    return None if view is None else replace(view, config_url="v2")


VERSION_2 = (replace(INSTALLATIONS, evolve=_marked, version=2), CONNECTIONS, DESTINATIONS)


def write(installation_id: str, n: int) -> dict[str, Any]:
    return installation_event("write.async.done", installation_id, objectName="o", success=True, n=n)


async def story(tracker: Tracker, count: int = 20) -> list[str]:
    ids = [new_id("inst") for _ in range(count)]
    for installation_id in ids:
        await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
        await tracker.ingest(write(installation_id, 1))
    await tracker.catch_up()
    return ids


@contextlib.asynccontextmanager
async def switch_held(database_url: str) -> AsyncIterator[None]:
    """Hold HEALTH_LOCK, which a rebuild's switch-over waits for (and so do the live runners)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", HEALTH_LOCK)
        yield
    finally:
        await conn.close()


async def started(tracker: Tracker, phase: str, phases: list[str]) -> asyncio.Task[dict[str, int]]:
    """A rebuild of the installations that has reached `phase`; `phases` gets each phase it reports, in order."""

    def report(progress: Progress) -> None:
        if not phases or phases[-1] != progress.phase:
            phases.append(progress.phase)

    task = asyncio.create_task(tracker.rebuild(["installations"], report))

    async def reached() -> bool:
        if task.done():
            task.result()
        return phase in phases

    await eventually(reached)
    return task


async def test_reads_answer_from_the_live_rows_until_the_switch(make_tracker: MakeTracker, database_url: str) -> None:
    live = make_tracker(follow_projections=False)
    await live.start()
    ids = await story(live)
    upgraded = make_tracker(follow_projections=False, read_models=VERSION_2)
    await upgraded.start()
    phases: list[str] = []

    async with switch_held(database_url):
        rebuilding = await started(upgraded, "switching", phases)
        await live.ingest(write(ids[0], 2))  # after the live checkpoint: the live runner folds it after the switch
        for reader in (live, upgraded):
            view = await reader.installation(ids[0])
            assert view is not None
            assert view["configUrl"] is None  # still the live rows of version 1
            assert view["objects"]["o"]["writes"]["operations"] == 1
        assert not rebuilding.done()

    assert await rebuilding == {"installations": 40}
    await upgraded.catch_up()
    view = await live.installation(ids[0])
    assert view is not None
    assert view["configUrl"] == "v2"
    assert view["objects"]["o"]["writes"]["operations"] == 2
    assert phases == ["replaying", "catching up", "switching", "done"]
    status = await upgraded.status()
    installations = next(p for p in status["projections"] if p["name"] == "installations")
    assert installations["storedVersion"] == 2
    assert installations["rebuild"]["phase"] == "done"
    assert installations["rebuild"]["matchedLive"] is None  # another version: nothing to compare
    assert installations["rebuild"]["rowsChanged"] == 20
    assert installations["rebuild"]["eventsDone"] == installations["rebuild"]["eventsTotal"] == 40


async def test_a_rebuild_of_the_same_logic_matches_the_digest_and_writes_nothing(tracker: Tracker) -> None:
    await story(tracker)
    before = await tracker.pool.fetch("SELECT xmin::text, installation_id FROM installation_view ORDER BY 2")

    assert await tracker.rebuild() == {"installations": 40, "connections": 0, "destinations": 0,
                                      "alert_subscriptions": 0}  # fmt: skip

    after = await tracker.pool.fetch("SELECT xmin::text, installation_id FROM installation_view ORDER BY 2")
    assert after == before  # not one row rewritten
    rebuilds = {p["name"]: p["rebuild"] for p in (await tracker.status())["projections"]}
    assert rebuilds["installations"]["matchedLive"] is True
    assert rebuilds["installations"]["rowsChanged"] == 0


async def test_a_live_row_that_differs_from_the_log_is_found_and_repaired(tracker: Tracker) -> None:
    ids = await story(tracker, count=3)
    await tracker.pool.execute(
        "UPDATE installation_view SET doc = jsonb_set(doc, '{groupName}', '\"tampered\"') WHERE installation_id = $1",
        ids[1],
    )

    await tracker.rebuild(["installations"])

    view = await tracker.installation(ids[1])
    assert view is not None
    assert view["groupName"] == "Acme"
    rebuild = next(p["rebuild"] for p in (await tracker.status())["projections"] if p["name"] == "installations")
    assert rebuild["matchedLive"] is False
    assert rebuild["rowsChanged"] == 1


async def test_one_switch_updates_the_rows_that_differ_and_inserts_the_missing_ones(tracker: Tracker) -> None:
    ids = await story(tracker, count=3)
    connection_id = await tracker.pool.fetchval(
        "SELECT connection_id FROM installation_view WHERE installation_id = $1", ids[1]
    )
    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await tracker.catch_up()
    views_sql = "SELECT installation_id, position, doc, connection_status, health FROM installation_view ORDER BY 1"
    views = await tracker.pool.fetch(views_sql)
    assert {(view["connection_status"], view["health"]) for view in views} == {("error", "unhealthy")}
    await tracker.pool.execute(
        "UPDATE installation_view SET doc = jsonb_set(doc, '{groupName}', '\"tampered\"') WHERE installation_id = $1",
        ids[0],
    )
    await tracker.pool.execute("DELETE FROM installation_view WHERE installation_id = $1", ids[1])

    await tracker.rebuild(["installations"])

    assert await tracker.pool.fetch(views_sql) == views  # the inserted row has its joined columns again
    rebuild = next(p["rebuild"] for p in (await tracker.status())["projections"] if p["name"] == "installations")
    assert rebuild["rowsChanged"] == 2


async def test_a_rebuild_fills_live_tables_whose_statistics_say_empty(tracker: Tracker) -> None:
    """As after emptying them, or on a new database whose tables were analyzed before any row came."""
    ids = await story(tracker, count=5)
    await tracker.ingest(installation_event("read.schedule.paused", ids[0], config=config(), error="quota exceeded"))
    await tracker.catch_up()
    views_sql = "SELECT installation_id, position, doc FROM installation_view ORDER BY 1"
    issues_sql = "SELECT entity_id, code, status, doc FROM issues WHERE entity = 'installation' ORDER BY 1, 2"
    views, issues = await tracker.pool.fetch(views_sql), await tracker.pool.fetch(issues_sql)
    assert len(issues) == 1
    await tracker.pool.execute("TRUNCATE installation_view, issues")
    await tracker.pool.execute("ANALYZE installation_view, issues")

    await tracker.rebuild(["installations"])

    assert await tracker.pool.fetch(views_sql) == views
    assert await tracker.pool.fetch(issues_sql) == issues
    rebuild = next(p["rebuild"] for p in (await tracker.status())["projections"] if p["name"] == "installations")
    assert rebuild["rowsChanged"] == len(views) + len(issues)


async def test_a_replay_split_across_worker_processes_gives_the_live_rows(
    make_tracker: MakeTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuild, "WORKERS_FROM", 0)
    ranges: list[StreamRange] = []

    async def counted(database_url: str, name: str, streams: StreamRange, head: int, on_page: OnPage) -> None:
        ranges.append(streams)
        await run_worker(database_url, name, streams, head, on_page)

    run_worker = rebuild.run_worker
    monkeypatch.setattr(rebuild, "run_worker", counted)
    tracker = make_tracker(settings=Settings(rebuild_workers=3), follow_projections=False)
    await tracker.start()
    await story(tracker, count=30)
    before = await tracker.pool.fetch("SELECT xmin::text, installation_id FROM installation_view ORDER BY 2")

    assert await tracker.rebuild(["installations"]) == {"installations": 60}

    assert len(ranges) == 3
    assert ranges[0].start == "installation:" and ranges[-1].stop == "installation;"
    assert all(left.stop == right.start for left, right in itertools.pairwise(ranges))
    after = await tracker.pool.fetch("SELECT xmin::text, installation_id FROM installation_view ORDER BY 2")
    assert after == before  # the workers' rows equal the live runner's: not one rewritten
    status = next(p for p in (await tracker.status())["projections"] if p["name"] == "installations")
    assert status["rebuild"]["matchedLive"] is True
    assert status["rebuild"]["eventsDone"] == 60


async def test_a_worker_s_failures_become_the_rebuild_s_dead_letters(
    make_tracker: MakeTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuild, "WORKERS_FROM", 0)
    tracker = make_tracker(settings=Settings(rebuild_workers=2), follow_projections=False)
    await tracker.start()
    sick, *_ = await story(tracker, count=6)
    # A write that an older parser let through without its object, then one more: the logic fails on the first.
    await tracker.pool.execute(
        "INSERT INTO events (stream_id, version, type, topic, payload, raw, metadata, dedupe_key, received_at)"
        " SELECT stream_id, version + n, type, topic, CASE WHEN n = 1 THEN payload #- '{data,objectName}'"
        " ELSE payload END, raw, metadata, dedupe_key || n, received_at FROM events, generate_series(1, 2) n"
        " WHERE stream_id = $1 AND type = 'write.async.done'",
        f"installation:{sick}",
    )

    assert await tracker.rebuild(["installations"]) == {"installations": 14}

    letters = await tracker.pool.fetch("SELECT entity_id, event_type, error, status FROM dead_letters")
    assert [tuple(letter) for letter in letters] == [(sick, "write.async.done", "KeyError: 'objectName'", "retrying")]
    view = await tracker.installation(sick)
    assert view is not None
    assert view["objects"]["o"]["writes"]["operations"] == 1  # the write after the failed one waits


async def test_replay_pages_leave_out_other_types_and_keep_a_view_that_goes_on(
    tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await story(tracker, count=3)
    for n in range(3):  # a type the installations logic does not fold, in one stream
        await tracker.ingest(notification("installation.renamed", installationId=ids[1], n=n))
    await tracker.ingest(write(ids[1], 2))
    await tracker.catch_up()
    before = await tracker.pool.fetch("SELECT xmin::text, installation_id FROM installation_view ORDER BY 2")
    monkeypatch.setattr(replay, "PAGE", 2)  # every stream before it has two rows: a page holds two renames alone

    assert await tracker.rebuild(["installations"]) == {"installations": 7}  # the folded events

    after = await tracker.pool.fetch("SELECT xmin::text, installation_id FROM installation_view ORDER BY 2")
    assert after == before
    status = next(p for p in (await tracker.status())["projections"] if p["name"] == "installations")
    assert status["rebuild"]["matchedLive"] is True


async def test_two_rebuilds_of_one_read_model_never_run_at_once(make_tracker: MakeTracker, database_url: str) -> None:
    first, second = make_tracker(follow_projections=False), make_tracker(follow_projections=False)
    await first.start()
    await second.start()
    await story(first, count=2)

    async with switch_held(database_url):
        rebuilding = await started(first, "switching", [])
        for tracker in (first, second):  # in this process and in another
            with pytest.raises(RebuildRunningError, match="a rebuild of installations is running already"):
                await tracker.start_rebuild("installations")
        with pytest.raises(ValueError, match="unknown read model"):
            await second.start_rebuild("nope")
    await rebuilding
    await second.rebuild(["installations"])  # the lock went with the first rebuild


async def test_a_newer_version_is_rebuilt_in_the_background_at_start(make_tracker: MakeTracker) -> None:
    old = make_tracker(follow_projections=False)
    await old.start()
    ids = await story(old, count=5)

    new = make_tracker(read_models=VERSION_2)  # follows the log, as `tracker serve` does
    await new.start()

    async def switched() -> bool:
        view = await new.installation(ids[-1])
        return view is not None and view["configUrl"] == "v2"

    await eventually(switched)
    version = await new.pool.fetchval("SELECT version FROM projection_checkpoints WHERE name = 'installations'")
    assert version == 2


async def test_a_runner_drops_the_views_it_kept_when_a_rebuild_switched_under_it(make_tracker: MakeTracker) -> None:
    live = make_tracker(follow_projections=False)
    await live.start()
    (installation_id,) = await story(live, count=1)  # the live runner now keeps that view decoded
    upgraded = make_tracker(follow_projections=False, read_models=VERSION_2)
    await upgraded.start()
    await upgraded.rebuild(["installations"])  # same positions, other documents

    await live.ingest(write(installation_id, 2))
    await live.catch_up()

    view = await live.installation(installation_id)
    assert view is not None
    assert view["configUrl"] == "v2"  # folded onto the switched row, not onto the view it had kept
    assert view["objects"]["o"]["writes"]["operations"] == 2


async def test_the_admin_route_starts_a_rebuild_and_refuses_a_second(
    make_tracker: MakeTracker, database_url: str
) -> None:
    tracker = make_tracker(follow_projections=False)
    await tracker.start()
    await story(tracker, count=2)
    async with TestClient(TestServer(tracker.web_app())) as client:
        unknown = await client.post("/v1/admin/projections/nope/rebuild")
        assert unknown.status == 404
        async with switch_held(database_url):
            response = await client.post("/v1/admin/projections/installations/rebuild")
            assert response.status == 202
            again = await client.post("/v1/admin/projections/installations/rebuild")
            assert again.status == 409
            assert "running already" in (await again.json())["error"]

        async def done() -> bool:
            status = await (await client.get("/v1/status")).json()
            rebuild = next(p["rebuild"] for p in status["projections"] if p["name"] == "installations")
            return rebuild is not None and rebuild["phase"] == "done"

        await eventually(done)


async def test_a_cancelled_rebuild_leaves_no_lock_and_no_shadow_behind(tracker: Tracker) -> None:
    await asyncio.gather(*(
        tracker.ingest(installation_event("installation.created", f"inst-{n:05d}", config=config()))
        for n in range(3_000)
    ))  # fmt: skip
    await tracker.catch_up()
    locks = [key & 0xFFFF_FFFF for key in (HEALTH_LOCK, rebuild_lock_key("installations"))]
    for delay in (0.02, 0.1, 0.3, 0.6):
        rebuilding = asyncio.create_task(tracker.rebuild(["installations"]))
        await asyncio.sleep(delay)
        rebuilding.cancel()
        await asyncio.sleep(0.001)
        rebuilding.cancel()  # a second cancel can cut the clean-up short
        with contextlib.suppress(BaseException):
            await rebuilding

        async def released() -> bool:  # an ended session's locks go when the server sees the socket close
            held = await tracker.pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = ANY($1::oid[])"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                locks,
            )
            return held == 0

        await eventually(released, timeout=5)
    assert await tracker.rebuild(["installations"]) == {"installations": 3_000}
    assert await tracker.pool.fetchval("SELECT to_regclass('rebuild_installation_view')") is None
    assert await tracker.pool.fetchval("SELECT count(*) FROM installation_view") == 3_000
