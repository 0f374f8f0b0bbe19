"""The benchmark's own machinery: what it loads must be what the tracker stores, and its baselines must work.

Timings are not tested here (they belong to `python -m bench`); what is tested is that the figures
would mean something: the bulk-loaded log equals an ingested one, the library baselines store and
fold what they are given, the latency probe reads visibility right, and the alerts scenario's load makes the
transitions it expects and times each alert from its own notification.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from bench import alert_receiver, alert_traffic, alerts, bulk_log, library_projection, payloads
from bench.harness import new_secret
from bench.library_receiver import TABLE as LIBRARY_TABLE
from bench.library_receiver import Library, library_env
from bench.pacer import Probe
from tracker import Tracker

_ROWS = "SELECT stream_id, version, type, topic, payload->'data' AS data, raw FROM events ORDER BY position"


async def test_the_bulk_log_stores_what_ingest_stores(tracker: Tracker, database_url: str) -> None:
    for index, line in enumerate(bulk_log.notifications(300, 40, seed=7)):
        await tracker.ingest(line, delivery_id=f"ingest_{index}")
    ingested = [tuple(row) for row in await tracker.pool.fetch(_ROWS)]
    await tracker.pool.execute("TRUNCATE events")

    loaded = await bulk_log.load(database_url, 300, 40, seed=7, workers=1)

    assert loaded.events == 300
    assert [tuple(row) for row in await tracker.pool.fetch(_ROWS)] == ingested
    assert len({row[0] for row in ingested}) > 40  # installations, and their connections and destinations


async def test_the_bulk_log_refuses_a_log_that_is_not_empty(tracker: Tracker, database_url: str) -> None:
    await tracker.ingest(next(bulk_log.notifications(1, 1, seed=1)))
    with pytest.raises(bulk_log.BulkLogError):
        await bulk_log.load(database_url, 10, 2)


def test_library_settings_come_from_a_socket_url_and_a_tcp_url() -> None:
    socket = library_env("postgresql://postgres:@/bench_1?host=/tmp/pg/pgdata", pool_size=3)
    tcp = library_env("postgresql://ada:s%40cret@db.example:6543/tracker", pool_size=3)

    assert (socket["POSTGRES_HOST"], socket["POSTGRES_PORT"], socket["POSTGRES_DBNAME"]) == (
        "/tmp/pg/pgdata",
        "5432",
        "bench_1",
    )
    assert (tcp["POSTGRES_HOST"], tcp["POSTGRES_PORT"], tcp["POSTGRES_USER"], tcp["POSTGRES_PASSWORD"]) == (
        "db.example", "6543", "ada", "s@cret",
    )  # fmt: skip
    assert socket["POSTGRES_POOL_SIZE"] == "3"


async def test_the_library_receiver_appends_to_the_stream_and_ignores_a_redelivery(
    tracker: Tracker, database_url: str
) -> None:
    library = await asyncio.to_thread(Library, library_env(database_url, pool_size=2))
    try:
        await tracker.pool.execute(f"TRUNCATE {LIBRARY_TABLE}, library_deliveries")
        rng = random.Random(1)
        first, second = (
            payloads.notification(kind, 4, rng, 1) for kind in ("installation.created", "read.backfill.done")
        )
        now = datetime.now(UTC)
        positions = [
            await asyncio.to_thread(library.record, n["notificationType"], n["data"], now, f"d{i}")
            for i, n in enumerate((first, second))
        ]
        again = await asyncio.to_thread(library.record, second["notificationType"], second["data"], now, "d1")
        aggregate = await asyncio.to_thread(library.repository.get, "installation:inst-000004")
    finally:
        await asyncio.to_thread(library.close)

    assert positions[0] < positions[1]
    assert again == 0
    assert aggregate.version == 2
    assert aggregate.identity["installationId"] == "inst-000004"


async def test_the_library_runner_folds_the_slice_as_the_tracker_does(tracker: Tracker, database_url: str) -> None:
    for index, line in enumerate(bulk_log.notifications(120, 15, seed=3)):
        await tracker.ingest(line, delivery_id=f"slice_{index}")
    await tracker.pool.execute(f"DROP TABLE IF EXISTS {LIBRARY_TABLE}")
    await tracker.catch_up()

    result = await asyncio.to_thread(library_projection.replay, database_url, 120, 60)

    ours = await tracker.pool.fetch("SELECT installation_id AS key, doc->>'version' AS version FROM installation_view")
    theirs = await tracker.pool.fetch("SELECT key, doc->>'version' AS version FROM library_installations")
    assert result["read"] == 120
    assert len(ours) == 15
    assert sorted(map(tuple, theirs)) == sorted(map(tuple, ours))


def test_the_probe_sees_a_position_at_the_first_checkpoint_past_it() -> None:
    probe = Probe.__new__(Probe)
    probe.times, probe.positions = [1.0, 2.0, 3.0], [10, 25, 40]

    assert [probe.visible_at(position) for position in (1, 10, 11, 25, 40, 41)] == [1.0, 1.0, 2.0, 2.0, 3.0, None]


def test_the_alert_load_refreshes_each_connection_a_gap_after_its_error_and_the_rest_opens_nothing() -> None:
    load = alert_traffic.notifications(
        alerts.Alerting(100, seconds=10, warmup=0, share=0.1, gap=1.0, installations=50), 1
    )

    assert len(load) == 1_000
    pairs = [(index, pair) for index, (_, pair) in enumerate(load) if pair is not None]
    assert [index for index, _ in pairs] == list(range(9, 1_000, 10))
    assert Counter(kind for _, (_, kind) in pairs) == {"error": 50, "refreshed": 50}
    errors = {connection: index for index, (connection, kind) in pairs if kind == "error"}
    assert {index - errors[connection] for index, (connection, kind) in pairs if kind == "refreshed"} == {100}
    assert len(errors) == 50  # 50 connections, each errs once
    quiet = [notification for notification, pair in load if pair is None]
    assert all(
        n["notificationType"] in alert_traffic.QUIET
        or (n["notificationType"] == "write.async.done" and n["data"]["success"])
        for n in quiet
    )


def test_the_alert_transitions_expected_open_resolve_and_reopen_in_log_order() -> None:
    pairs = [
        [9, 0.9, "conn-a", "error"],
        [1, 0.1, "conn-a", "error"],
        [2, 0.2, "conn-b", "refreshed"],  # nothing open on conn-b yet: no transition
        [5, 0.5, "conn-a", "refreshed"],
        [3, 0.3, "conn-b", "error"],
        [12, 1.2, "conn-a", "refreshed"],
    ]

    assert alert_receiver.expected_transitions(pairs) == {
        1: (("opened", "conn-a", 0), 0.1),
        3: (("opened", "conn-b", 0), 0.3),
        5: (("resolved", "conn-a", 0), 0.5),
        9: (("reopened", "conn-a", 1), 0.9),
        12: (("resolved", "conn-a", 1), 1.2),
    }


def _alert(secret: str, at: float, webhook_id: str, transition: str, reopened: int = 0) -> list[Any]:
    body = orjson.dumps(
        {
            "type": f"issue.{transition}",
            "data": {"issue": {"entityId": "conn-a", "code": alert_receiver.CODE, "reopened": reopened}},
        }
    ).decode()
    now = datetime.now(UTC)
    return [at, webhook_id, str(int(now.timestamp())), Webhook(secret).sign(webhook_id, now, body), body]


def test_an_alert_is_timed_from_its_notification_and_one_signed_otherwise_or_under_another_id_fails() -> None:
    secret = new_secret()
    pairs = [[1, 10.0, "conn-a", "error"], [5, 11.0, "conn-a", "refreshed"]]
    rows = [("msg_1", 1, "delivered"), ("msg_5", 5, "delivered")]
    heard = [
        _alert(secret, 10.5, "msg_1", "opened"),
        _alert(secret, 10.75, "msg_1", "opened"),  # sent again: at-least-once
        _alert(secret, 11.25, "msg_5", "resolved"),
    ]

    good = alert_receiver.told(pairs, heard, rows, secret, timed_from=10.0, last_due=11.5)

    assert good.problems == []
    assert (good.expected, good.delivered, good.received, good.duplicates) == (2, 2, 2, 1)
    assert (good.p50_ms, good.p99_ms, good.drain_s) == (250.0, 500.0, -0.25)
    assert good.per_second == pytest.approx(2 / 1.5)
    late = alert_receiver.told(pairs, heard, rows, secret, timed_from=10.6, last_due=11.0)  # the first is not timed
    assert (late.p50_ms, late.p99_ms, late.per_second) == (250.0, 250.0, 0.0)

    forged = [_alert(new_secret(), 10.5, "msg_1", "opened"), _alert(secret, 11.25, "msg_5", "opened")]
    bad = alert_receiver.told(
        pairs, forged, [*rows[:1], ("msg_5", 5, "pending")], secret, timed_from=0.0, last_due=11.0
    )

    assert bad.received == 0
    assert bad.problems == [
        "2 transitions made, 2 rows, 1 delivered",
        "2 alerts not as their rows say, e.g. msg_1: signature",
        "2 transitions whose alert never reached the receiver",
    ]
