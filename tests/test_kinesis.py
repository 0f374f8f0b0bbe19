"""The Kinesis consumer against a real Kinesis API on loopback (moto in server mode) and a real PostgreSQL.

Each test makes its own stream. AWS credentials are set per test (monkeypatch) and the endpoint and
region are passed in the settings, so nothing leaks into other tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tracker import Settings, Tracker
from tracker.ingest.kinesis import StreamConsumer
from tracker.ingest.kinesis_client import KinesisConfigError
from tracker.store.locks import APPEND_LOCK
from tracker.store.migrations import migrate

from .conftest import SECRET, MakeTracker
from .kinesis_server import CREDENTIALS, REGION, FaultyKinesis, MotoKinesis
from .notifications import connection_fields, installation_fields, new_id
from .waiting import eventually


def kinesis_settings(database_url: str, endpoint: str, *streams: str, lease: float = 2.0) -> Settings:
    return Settings(
        database_url=database_url,
        webhook_secrets=(SECRET,),
        kinesis_streams=streams,
        kinesis_lease_seconds=lease,
        kinesis_poll_interval=0.2,
        aws_region=REGION,
        kinesis_endpoint_url=endpoint,
    )


async def create_stream(kinesis: Any, shards: int) -> tuple[str, list[dict[str, Any]]]:
    name = new_id("stream")
    await kinesis.create_stream(StreamName=name, ShardCount=shards)
    return name, (await kinesis.list_shards(StreamName=name))["Shards"]


async def put(kinesis: Any, stream: str, shard: dict[str, Any], records: list[bytes]) -> list[str]:
    """Put records into one shard (its starting hash key routes them there); return their sequence numbers."""
    answer = await kinesis.put_records(
        StreamName=stream,
        Records=[
            {"Data": data, "PartitionKey": "p", "ExplicitHashKey": shard["HashKeyRange"]["StartingHashKey"]}
            for data in records
        ],
    )
    assert {entry["ShardId"] for entry in answer["Records"]} == {shard["ShardId"]}
    return [entry["SequenceNumber"] for entry in answer["Records"]]


def outpost(notification_type: str, data: dict[str, Any], event_id: str | None = None, key: str = "topic") -> bytes:
    metadata: dict[str, Any] = {key: notification_type, "timestamp": "1795000000"}
    if event_id is not None:
        metadata["event-id"] = event_id
    return orjson.dumps({"metadata": metadata, "data": data})


def connection_records(count: int, prefix: str = "conn", *, event_ids: bool = True) -> list[bytes]:
    return [
        outpost("connection.created", connection_fields(f"{prefix}-{n}"), f"{prefix}-evt-{n}" if event_ids else None)
        for n in range(count)
    ]


async def stored(tracker: Tracker, stream: str) -> list[asyncpg.Record]:
    return await tracker.pool.fetch(
        "SELECT position, type, dedupe_key, metadata->'kinesis' AS kinesis, metadata FROM events"
        " WHERE metadata->'kinesis'->>'stream' = $1 ORDER BY position",
        stream,
    )


async def count_stored(tracker: Tracker, stream: str) -> int:
    return int(
        await tracker.pool.fetchval("SELECT count(*) FROM events WHERE metadata->'kinesis'->>'stream' = $1", stream)
    )


async def stored_exactly(tracker: Tracker, stream: str, expected: int, timeout: float = 10.0) -> None:
    """Wait until the stream's events number `expected`; on failure, say what was stored and quarantined."""

    async def seen() -> str:
        rows = await tracker.pool.fetch("SELECT reason FROM quarantine WHERE source = 'kinesis' ORDER BY id LIMIT 5")
        total = await tracker.pool.fetchval("SELECT count(*) FROM quarantine WHERE source = 'kinesis'")
        reasons = [row["reason"] for row in rows]
        return f"{await count_stored(tracker, stream)} stored, {total} quarantined, the first for: {reasons}"

    async def reached() -> bool:
        return await count_stored(tracker, stream) == expected

    await eventually(reached, timeout, describe=seen)


async def shard_rows(tracker: Tracker, stream: str) -> dict[str, asyncpg.Record]:
    rows = await tracker.pool.fetch(
        "SELECT shard_id, owner, checkpoint::text AS checkpoint, finished, lease_expires > now() AS live"
        " FROM kinesis_shards WHERE stream = $1",
        stream,
    )
    return {row["shard_id"]: row for row in rows}


async def checkpoint(tracker: Tracker, stream: str, shard_id: str) -> str | None:
    row = (await shard_rows(tracker, stream)).get(shard_id)
    return None if row is None else row["checkpoint"]


def consumer(tracker: Tracker) -> StreamConsumer:
    assert tracker.kinesis is not None
    return tracker.kinesis.consumers[0]


async def test_both_shapes_an_unknown_type_and_bad_records_reach_the_log_or_the_quarantine(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    stream, (shard,) = await create_stream(kinesis, 1)
    sequences = await put(
        kinesis,
        stream,
        shard,
        [
            outpost(
                "installation.deleted", {**installation_fields("inst-k1"), "config": {}}, "evt-1", "notificationType"
            ),
            outpost("connection.error", {**connection_fields("conn-k1"), "errors": ["expired"]}, key="topic"),
            orjson.dumps({"notificationType": "connection.refreshed", "data": connection_fields("conn-k2")}),
            outpost("billing.invoice.paid", {"installationId": "inst-k2"}, "evt-4"),
            b"\xff\xfe this is not JSON",
            orjson.dumps(installation_fields("inst-k3")),  # a bare data object: no type anywhere
        ],
    )
    tracker = make_tracker(settings=kinesis_settings(database_url, moto.endpoint, stream), follow_projections=False)
    await tracker.start()

    async def quarantined() -> list[asyncpg.Record]:
        rows = await tracker.pool.fetch(
            "SELECT delivery_id, reason, headers, raw FROM quarantine WHERE source = 'kinesis' ORDER BY id"
        )
        return rows if len(rows) == 2 else []

    kept = await eventually(quarantined)
    events = await eventually(lambda: _exactly(stored(tracker, stream), 4))
    assert [row["type"] for row in events] == [
        "installation.deleted",
        "connection.error",
        "connection.refreshed",
        "billing.invoice.paid",
    ]
    assert [row["dedupe_key"] for row in events] == [
        "outpost:evt-1",
        f"delivery:kinesis:{stream}/{shard['ShardId']}/{sequences[1]}",
        f"delivery:kinesis:{stream}/{shard['ShardId']}/{sequences[2]}",
        "outpost:evt-4",
    ]
    first = events[0]["kinesis"]
    assert (first["stream"], first["shardId"], first["sequenceNumber"]) == (stream, shard["ShardId"], sequences[0])
    assert first["approximateArrivalTimestamp"] is not None
    assert events[0]["metadata"]["recordMetadata"]["event-id"] == "evt-1"
    assert [row["delivery_id"] for row in kept] == [
        f"kinesis:{stream}/{shard['ShardId']}/{sequences[4]}",
        f"kinesis:{stream}/{shard['ShardId']}/{sequences[5]}",
    ]
    assert kept[0]["reason"].startswith("not valid JSON")
    assert kept[0]["raw"] == b"\xff\xfe this is not JSON"
    assert "neither notificationType nor metadata" in kept[1]["reason"]
    assert kept[1]["headers"]["kinesis-sequence-number"] == sequences[5]

    async def checkpointed() -> bool:
        return await checkpoint(tracker, stream, shard["ShardId"]) == sequences[-1]

    await eventually(checkpointed)
    async with TestClient(TestServer(tracker.web_app())) as client:
        response = await client.get("/v1/status")
        assert response.status == 200
        status = await response.json()
    (listed,) = [entry for entry in status["kinesis"] if entry["stream"] == stream]
    (shown,) = listed["shards"]
    assert shown["shardId"] == shard["ShardId"]
    assert shown["owner"] == consumer(tracker).owner
    assert shown["checkpoint"] == sequences[-1]
    assert isinstance(shown["millisBehindLatest"], int)
    assert shown["finished"] is False

    def counted(notification_type: str, outcome: str) -> float | None:
        labels = {"source": "kinesis", "type": notification_type, "outcome": outcome}
        return tracker.metrics.registry.get_sample_value("tracker_notifications_total", labels)

    assert counted("installation.deleted", "stored") == 1
    assert counted("connection.error", "stored") == 1
    assert counted("unrecognized", "stored") == 1  # billing.invoice.paid: a bounded label
    assert counted("unknown", "quarantined") == 2


async def _exactly(rows: Any, count: int) -> list[asyncpg.Record]:
    found: list[asyncpg.Record] = await rows
    return found if len(found) == count else []


async def test_a_redelivered_record_is_stored_once(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    stream, (shard,) = await create_stream(kinesis, 1)
    once = outpost("connection.created", connection_fields("conn-again"), "evt-again")
    sequences = await put(kinesis, stream, shard, [once, once])
    later = await put(kinesis, stream, shard, [once, *connection_records(2, "after")])
    tracker = make_tracker(settings=kinesis_settings(database_url, moto.endpoint, stream), follow_projections=False)
    await tracker.start()

    async def read_all() -> bool:
        return await checkpoint(tracker, stream, shard["ShardId"]) == later[-1]

    await eventually(read_all)
    events = await stored(tracker, stream)
    assert [row["dedupe_key"] for row in events] == ["outpost:evt-again", "outpost:after-evt-0", "outpost:after-evt-1"]
    assert events[0]["kinesis"]["sequenceNumber"] == sequences[0]


async def test_a_record_the_database_refuses_is_quarantined_and_its_page_stored(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    """A page is one COPY; should the database refuse a row (a constraint stands in: the parser screens what
    the log cannot hold), the page goes one by one, that record is quarantined and the checkpoint moves on."""
    stream, (shard,) = await create_stream(kinesis, 1)
    poison = outpost("connection.created", connection_fields("conn-poison"), "evt-poison")
    sequences = await put(kinesis, stream, shard, [*connection_records(2, "before"), poison,
                                                   *connection_records(2, "after")])  # fmt: skip
    tracker = make_tracker(settings=kinesis_settings(database_url, moto.endpoint, stream), follow_projections=False)
    admin = await asyncpg.connect(database_url)
    await migrate(admin)  # the log's table exists before the tracker starts reading
    await admin.execute("ALTER TABLE events ADD CONSTRAINT test_refuses CHECK (dedupe_key <> 'outpost:evt-poison')")
    try:
        await tracker.start()

        async def read_all() -> bool:
            return await checkpoint(tracker, stream, shard["ShardId"]) == sequences[-1]

        await eventually(read_all)
        keys = [row["dedupe_key"] for row in await stored(tracker, stream)]
        reason = await tracker.pool.fetchval("SELECT reason FROM quarantine")
    finally:
        await admin.execute("ALTER TABLE events DROP CONSTRAINT test_refuses")
        await admin.close()
    assert keys == ["outpost:before-evt-0", "outpost:before-evt-1", "outpost:after-evt-0", "outpost:after-evt-1"]
    assert reason.startswith("the database refused the event")


def consume_env(database_url: str, endpoint: str, stream: str, lease: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "AWS_"))}
    return {
        **env,
        **CREDENTIALS,
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_KINESIS_STREAMS": stream,
        "TRACKER_KINESIS_LEASE_SECONDS": str(lease),
        "TRACKER_KINESIS_POLL_INTERVAL": "0.2",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_KINESIS": endpoint,
    }


async def start_consume(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tracker", "consume", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def test_a_consumer_killed_between_fetch_and_commit_loses_nothing_and_stores_nothing_twice(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    """`tracker consume` fetches a page and is SIGKILLed while its commit waits: nothing of the page is
    stored, its leases outlive it until they expire, and the consumer that takes over stores it all once."""
    stream, shards = await create_stream(kinesis, 2)
    last = {}
    for index, shard in enumerate(shards):
        records = connection_records(60, f"crash{index}")
        records[30] = b"not json at all"  # quarantined in the same transaction as its page
        last[shard["ShardId"]] = (await put(kinesis, stream, shard, records))[-1]
    probe = make_tracker(follow_projections=False)
    await probe.start()  # migrated, tables emptied
    blocker = await asyncpg.connect(database_url)
    process: asyncio.subprocess.Process | None = None
    try:
        await blocker.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)  # every append now waits
        process = await start_consume(consume_env(database_url, moto.endpoint, stream, lease=5.0))

        async def commit_waiting() -> bool:
            return bool(
                await probe.pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " AND ((classid::bigint << 32) | objid::bigint) = $1",
                    APPEND_LOCK,
                )
            )

        await eventually(commit_waiting, timeout=30)
        process.kill()
        await process.wait()
        dead = await shard_rows(probe, stream)
        assert {row["owner"] for row in dead.values()} != {None}  # leases outlive the process...
        assert all(row["live"] for row in dead.values() if row["owner"] is not None)  # ...until they expire
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await blocker.execute("SELECT pg_advisory_unlock_all()")
        await blocker.close()

    # The killed process never sent its COMMIT: nothing of the page, its quarantined record or its checkpoint.
    assert await count_stored(probe, stream) == 0
    assert await probe.pool.fetchval("SELECT count(*) FROM quarantine") == 0
    assert {row["checkpoint"] for row in (await shard_rows(probe, stream)).values()} == {None}

    successor = make_tracker(
        settings=kinesis_settings(database_url, moto.endpoint, stream, lease=5.0), follow_projections=False
    )
    await successor.start()

    async def all_checkpointed() -> bool:
        return all([await checkpoint(successor, stream, shard_id) == sequence for shard_id, sequence in last.items()])

    await eventually(all_checkpointed, timeout=30)
    events = await stored(successor, stream)
    assert len(events) == 118
    assert len({(row["kinesis"]["shardId"], row["kinesis"]["sequenceNumber"]) for row in events}) == 118
    assert await successor.pool.fetchval("SELECT count(*) FROM quarantine WHERE source = 'kinesis'") == 2
    owners = {row["owner"] for row in (await shard_rows(successor, stream)).values()}
    assert owners == {consumer(successor).owner}


async def test_two_consumers_share_four_shards_and_store_every_record_once(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    stream, shards = await create_stream(kinesis, 4)
    settings = kinesis_settings(database_url, moto.endpoint, stream)
    first = make_tracker(settings=settings, follow_projections=False)
    await first.start()
    await eventually(lambda: _at_least(consumer(first).reading, 4))
    second = make_tracker(settings=settings, follow_projections=False)
    await second.start()
    a, b = consumer(first), consumer(second)

    async def shared() -> bool:
        return len(a.reading) == 2 and len(b.reading) == 2 and not a.reading & b.reading

    await eventually(shared, timeout=20)
    for index, shard in enumerate(shards):
        await put(kinesis, stream, shard, connection_records(100, f"shared{index}"))
    await stored_exactly(first, stream, 400, timeout=30)
    assert a.fetched + b.fetched == 400  # no record was read by both
    assert a.fetched > 0
    assert b.fetched > 0
    rows = await shard_rows(first, stream)
    assert {shard_id for shard_id, row in rows.items() if row["owner"] == a.owner} == a.reading
    assert {shard_id for shard_id, row in rows.items() if row["owner"] == b.owner} == b.reading
    events = await stored(first, stream)
    assert len({row["dedupe_key"] for row in events}) == 400


async def _at_least(items: set[str], count: int) -> bool:
    return len(items) >= count


async def test_a_clean_stop_releases_the_leases_at_once(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    stream, shards = await create_stream(kinesis, 2)
    settings = kinesis_settings(database_url, moto.endpoint, stream, lease=120.0)  # no expiry within the test
    first = make_tracker(settings=settings, follow_projections=False)
    await first.start()
    await eventually(lambda: _at_least(consumer(first).reading, 2))
    await put(kinesis, stream, shards[0], connection_records(5, "before"))
    await stored_exactly(first, stream, 5)
    await first.close()
    conn = await asyncpg.connect(database_url)
    try:
        owners = await conn.fetch("SELECT owner, lease_expires FROM kinesis_shards WHERE stream = $1", stream)
    finally:
        await conn.close()
    assert [tuple(row) for row in owners] == [(None, None), (None, None)]
    second = make_tracker(settings=settings, follow_projections=False)
    await second.start()
    await put(kinesis, stream, shards[1], connection_records(5, "after"))
    await stored_exactly(second, stream, 10)
    assert consumer(second).reading == {shard["ShardId"] for shard in shards}


async def test_tracker_consume_releases_its_leases_on_sigterm(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    stream, shards = await create_stream(kinesis, 2)
    await put(kinesis, stream, shards[0], connection_records(3, "term"))
    probe = make_tracker(follow_projections=False)
    await probe.start()
    process = await start_consume(consume_env(database_url, moto.endpoint, stream, lease=120.0))
    try:

        async def owned() -> bool:
            rows = await shard_rows(probe, stream)
            return len(rows) == 2 and all(row["owner"] is not None for row in rows.values())

        await eventually(owned, timeout=30)
        await stored_exactly(probe, stream, 3, timeout=30)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    rows = await shard_rows(probe, stream)
    assert {row["owner"] for row in rows.values()} == {None}
    assert rows[shards[0]["ShardId"]]["checkpoint"] is not None


async def test_children_of_a_split_and_a_merge_are_read_after_their_parents(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    """Shard A is split into A1 and A2, then A2 is merged with B into M: M may be read only after A2 and B.

    Through moto's public API only: moto routes a PutRecord to the first shard whose hash range fits, the
    closed parent, so a child is filled only by the merge, which copies its parents' records into M. The
    records carry no event id, so each copy is a delivery of its own (deduped by shard and sequence).
    """
    stream, (shard_a, shard_b) = await create_stream(kinesis, 2)
    await put(kinesis, stream, shard_a, connection_records(20, "a", event_ids=False))
    await put(kinesis, stream, shard_b, connection_records(20, "b", event_ids=False))
    middle = (int(shard_a["HashKeyRange"]["StartingHashKey"]) + int(shard_a["HashKeyRange"]["EndingHashKey"])) // 2
    await kinesis.split_shard(StreamName=stream, ShardToSplit=shard_a["ShardId"], NewStartingHashKey=str(middle))
    shards = (await kinesis.list_shards(StreamName=stream))["Shards"]
    a1, a2 = sorted(
        (s for s in shards if s.get("ParentShardId") == shard_a["ShardId"]),
        key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]),
    )
    await kinesis.merge_shards(StreamName=stream, ShardToMerge=a2["ShardId"], AdjacentShardToMerge=shard_b["ShardId"])
    (merged,) = [s["ShardId"] for s in (await kinesis.list_shards(StreamName=stream))["Shards"]
                 if s.get("AdjacentParentShardId")]  # fmt: skip
    tracker = make_tracker(settings=kinesis_settings(database_url, moto.endpoint, stream), follow_projections=False)
    await tracker.start()
    await stored_exactly(tracker, stream, 60, timeout=30)
    events = await stored(tracker, stream)

    def positions(shard_id: str) -> list[int]:
        return [row["position"] for row in events if row["kinesis"]["shardId"] == shard_id]

    assert len(positions(shard_a["ShardId"])) == len(positions(shard_b["ShardId"])) == len(positions(merged)) == 20
    assert max(positions(shard_a["ShardId"]) + positions(shard_b["ShardId"])) < min(positions(merged))

    async def parents_finished() -> dict[str, asyncpg.Record] | None:
        rows = await shard_rows(tracker, stream)
        parents = (shard_a["ShardId"], shard_b["ShardId"], a2["ShardId"])
        return rows if all(shard in rows and rows[shard]["finished"] for shard in parents) else None

    rows = await eventually(parents_finished)
    assert rows[merged]["finished"] is False
    assert rows[merged]["owner"] == consumer(tracker).owner
    assert rows[a1["ShardId"]]["finished"] is False


async def test_throttling_is_waited_out_and_an_expired_iterator_resumes_after_the_checkpoint(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    stream, (shard,) = await create_stream(kinesis, 1)
    sequences = await put(kinesis, stream, shard, connection_records(30, "faults"))
    throttled = "ProvisionedThroughputExceededException"
    faults = iter([throttled, throttled, None, "ExpiredIteratorException", throttled])
    async with FaultyKinesis(moto.endpoint, faults) as proxy:
        settings = replace(kinesis_settings(database_url, proxy.endpoint, stream), kinesis_max_records=10)
        tracker = make_tracker(settings=settings, follow_projections=False)
        await tracker.start()
        await stored_exactly(tracker, stream, 30, timeout=30)
        calls = list(proxy.calls)
    iterators = [body for _, operation, body in calls if operation == "GetShardIterator"]
    assert iterators[0]["ShardIteratorType"] == "TRIM_HORIZON"
    # After the expiry: from the checkpoint of the one page stored, not from the start, not from the page lost.
    assert iterators[1]["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert iterators[1]["StartingSequenceNumber"] == sequences[9]
    events = await stored(tracker, stream)
    assert [row["kinesis"]["sequenceNumber"] for row in events] == sequences


async def test_get_records_is_called_at_most_five_times_a_second_per_shard(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any
) -> None:
    """Pages of one record, stored in a few milliseconds each: only the limit spaces the calls."""
    stream, (shard,) = await create_stream(kinesis, 1)
    await put(kinesis, stream, shard, connection_records(8, "paced"))
    async with FaultyKinesis(moto.endpoint, iter(())) as proxy:
        settings = replace(kinesis_settings(database_url, proxy.endpoint, stream), kinesis_max_records=1)
        tracker = make_tracker(settings=settings, follow_projections=False)
        await tracker.start()
        await stored_exactly(tracker, stream, 8, timeout=30)
        calls = [at for at, operation, _ in proxy.calls if operation == "GetRecords"]
    assert len(calls) >= 8
    # Sent at least 0.2 s apart; over the whole run, delays in sending can shift only the first and last.
    assert calls[-1] - calls[0] >= 0.2 * (len(calls) - 1) - 0.1


async def test_a_stream_without_a_region_is_a_clear_error_at_start(
    make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")  # no profile's region either
    settings = replace(kinesis_settings(database_url, moto.endpoint, "any-stream"), aws_region=None)
    tracker = make_tracker(settings=settings, follow_projections=False)
    with pytest.raises(KinesisConfigError, match="set AWS_REGION"):
        await tracker.start()
