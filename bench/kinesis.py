"""Scenario `kinesis`: records/s from a four-shard stream into the log, against a baseline consumer that
stores one record per transaction, beside the moto server's own GetRecords ceiling.

moto (in server mode, its own process: `bench/moto_server.py`) holds the stream; `tracker consume` runs
as a child and reads it from the start into a fresh database; the baseline reads the same records with
the same client, conversion and append function, one record (and its checkpoint) per transaction, four
shards at once. The ceiling is GetRecords alone, four shards at once, nothing stored: with moto, it is
often the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil  # type: ignore[import-untyped]  # (types-psutil is not a dependency)
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench import database, payloads
from bench.children import LOOPBACK, Child, child_env, port_in, spawn
from bench.cpu import CpuMeter, cpu_seconds, find_postmaster
from bench.harness import CheckError, command, embedded_tracker, interleaved, listening, migrate
from bench.stats import Spread, spread
from bench.table import Row
from tracker.ingest.kinesis_records import KinesisRecord, convert
from tracker.store.quarantine import Refused

GOAL_PER_SECOND = 20_000
GOAL_VS_BASELINE = 10.0
SHARDS = 4
PORTS = range(18150, 18200)
"""The benchmark's share of the ports given to the Kinesis work (the tests take 18100-18149)."""
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
"""Fake: moto takes any."""


@dataclass(frozen=True, slots=True)
class Stream:
    records: int
    """Put into the stream, read by the tracker and by the ceiling."""
    baseline_records: int
    """Read by the baseline (one transaction each, so a share of them keeps the run short)."""
    time_limit: float = 120.0


@dataclass(frozen=True, slots=True)
class Run:
    mode: str
    """tracker, baseline or ceiling."""
    records: int
    seconds: float
    consumer_cpu: float | None
    """CPU seconds of the consumer's process (None for the baseline, which runs in the bench's own)."""
    postgres_cpu: float | None
    moto_cpu: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


def summary(stream: Stream) -> str:
    return (
        f"kinesis: {stream.records:,} records over {SHARDS} shards of a moto server, baseline"
        f" {stream.baseline_records:,} of them"
    )


@dataclass(frozen=True, slots=True)
class Source:
    """The moto server and the filled stream that every run reads from the start."""

    endpoint: str
    stream: str
    last: dict[str, str]
    """Each shard's last sequence number: a consumer has read everything when its checkpoints are these."""
    moto: psutil.Process


@contextlib.asynccontextmanager
async def _client(endpoint: str) -> AsyncIterator[Any]:
    config = AioConfig(retries={"total_max_attempts": 1}, max_pool_connections=SHARDS * 2)
    async with get_session().create_client(
        "kinesis",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    ) as client:
        yield client


def outpost_records(count: int) -> list[tuple[str, bytes]]:
    """(partition key, data): the webhook benchmark's mix, in Outpost's shape, keyed by installation."""
    records = []
    for index, notification in enumerate(payloads.stream(count, max(1, count // 10), seed=11)):
        data = notification["data"]
        key = data.get("installationId") or data.get("connectionId") or data.get("destinationId")
        metadata = {"event-id": f"evt-{index:08d}", "topic": notification["notificationType"], "timestamp": "1"}
        records.append((key, orjson.dumps({"metadata": metadata, "data": data})))
    return records


async def fill(client: Any, name: str, count: int) -> dict[str, str]:
    """Create the stream and put `count` records; return each shard's last sequence number."""
    await client.create_stream(StreamName=name, ShardCount=SHARDS)
    last: dict[str, str] = {}
    records = outpost_records(count)
    for start in range(0, count, 500):
        batch = records[start : start + 500]
        answer = await client.put_records(
            StreamName=name, Records=[{"Data": data, "PartitionKey": key} for key, data in batch]
        )
        if answer.get("FailedRecordCount"):
            msg = f"kinesis: moto refused {answer['FailedRecordCount']} records"
            raise CheckError(msg)
        for entry in answer["Records"]:
            last[entry["ShardId"]] = entry["SequenceNumber"]
    return last


async def _shard_ids(client: Any, name: str) -> list[str]:
    return [shard["ShardId"] for shard in (await client.list_shards(StreamName=name))["Shards"]]


async def ceiling(client: Any, source: Source, count: int) -> Run:
    """GetRecords alone, every shard at once, from the start to the end: what moto can serve."""

    async def drain(shard_id: str) -> int:
        answer = await client.get_shard_iterator(
            StreamName=source.stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )
        iterator, read = answer["ShardIterator"], 0
        while True:
            page = await client.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                return read
            read += len(page["Records"])
            iterator = page["NextShardIterator"]

    cpu_before, started = cpu_seconds(source.moto), time.perf_counter()
    read = sum(await asyncio.gather(*(drain(shard_id) for shard_id in await _shard_ids(client, source.stream))))
    seconds = time.perf_counter() - started
    if read != count:
        msg = f"kinesis: GetRecords returned {read} records, the stream holds {count}"
        raise CheckError(msg)
    return Run("ceiling", read, seconds, None, None, cpu_seconds(source.moto) - cpu_before)


async def _checkpoints(conn: asyncpg.Connection, name: str) -> dict[str, str | None]:
    rows = await conn.fetch(
        "SELECT shard_id, checkpoint::text AS checkpoint, owner FROM kinesis_shards WHERE stream = $1", name
    )
    return {row["shard_id"]: row["checkpoint"] for row in rows if row["owner"] is not None or row["checkpoint"]}


async def tracker_run(url: str, source: Source, stream: Stream, work_dir: Path) -> Run:
    """`tracker consume` from the first lease it takes to the last checkpoint, in a fresh database."""
    await migrate(url)  # before the child starts, so its start-up is not timed
    env = child_env(
        {
            **CREDENTIALS,
            "TRACKER_DATABASE_URL": url,
            "TRACKER_KINESIS_STREAMS": source.stream,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_KINESIS": source.endpoint,
        }
    )
    conn = await asyncpg.connect(url)
    try:
        async with spawn("kinesis-consume", command("tracker", "consume"), env, work_dir) as child:
            meter = CpuMeter(child.pid, await find_postmaster(url))
            deadline = time.monotonic() + stream.time_limit
            while not await _checkpoints(conn, source.stream):  # the first lease taken
                _alive(child, deadline)
                await asyncio.sleep(0.005)
            meter.start()
            moto_before, started = cpu_seconds(source.moto), time.perf_counter()
            while await _checkpoints(conn, source.stream) != source.last:
                _alive(child, deadline)
                await asyncio.sleep(0.02)
            seconds = time.perf_counter() - started
            consumer_cpu, postgres_cpu = meter.stop()
            moto_cpu = cpu_seconds(source.moto) - moto_before
        stored = int(await conn.fetchval("SELECT count(*) FROM events"))
        distinct = int(await conn.fetchval("SELECT count(DISTINCT dedupe_key) FROM events"))
    finally:
        await conn.close()
    if stored != stream.records or distinct != stream.records:
        msg = f"kinesis: the tracker stored {stored} events ({distinct} distinct) of {stream.records} records"
        raise CheckError(msg)
    return Run("tracker", stored, seconds, consumer_cpu, postgres_cpu, moto_cpu)


def _alive(child: Child, deadline: float) -> None:
    if child.process.returncode is not None:
        raise child.failure(f"exited with {child.process.returncode}")
    if time.monotonic() > deadline:
        raise child.failure("did not store every record in time")


async def baseline_run(url: str, client: Any, source: Source, stream: Stream) -> Run:
    """Each shard read by a task of its own, each record converted and appended, with its checkpoint,
    in a transaction of its own: what a consumer without batching does."""
    per_shard, name = stream.baseline_records // SHARDS, source.stream
    async with embedded_tracker(url) as tracker:
        event_log, pool = tracker.event_log, tracker.pool

        async def consume(shard_id: str) -> int:
            answer = await client.get_shard_iterator(
                StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )
            iterator, stored = answer["ShardIterator"], 0
            while stored < per_shard:
                page = await client.get_records(ShardIterator=iterator, Limit=min(10_000, per_shard - stored))
                for raw in page["Records"]:
                    record = KinesisRecord.from_response(name, shard_id, raw)
                    outcome = convert(record, datetime.now(UTC), event_log.mapper)
                    if isinstance(outcome, Refused):
                        msg = f"kinesis: the baseline refused a record: {outcome.reason}"
                        raise CheckError(msg)
                    event, stored_event = outcome
                    async with pool.acquire() as conn, conn.transaction():
                        await event_log.append_on(conn, [event], [stored_event])
                        await conn.execute(
                            "INSERT INTO kinesis_shards (stream, shard_id, checkpoint)"
                            " VALUES ($1, $2, $3::text::numeric)"
                            " ON CONFLICT (stream, shard_id) DO UPDATE SET checkpoint = EXCLUDED.checkpoint",
                            name,
                            shard_id,
                            raw["SequenceNumber"],
                        )
                    stored += 1
                iterator = page["NextShardIterator"]
            return stored

        moto_before, started = cpu_seconds(source.moto), time.perf_counter()
        stored = sum(await asyncio.gather(*(consume(shard_id) for shard_id in await _shard_ids(client, name))))
        seconds = time.perf_counter() - started
        moto_cpu = cpu_seconds(source.moto) - moto_before
        if await tracker.event_log.count() != stored:
            msg = f"kinesis: the baseline stored {await tracker.event_log.count()} events, it appended {stored}"
            raise CheckError(msg)
    return Run("baseline", stored, seconds, None, None, moto_cpu)


async def measure(server: str, stream: Stream, repetitions: int, work_dir: Path) -> list[Run]:
    name = f"bench-{random.randrange(16**8):08x}"
    moto_server = listening(
        "moto",
        lambda port: command("bench.moto_server", host=LOOPBACK, port=port),
        child_env({}),
        work_dir,
        port=port_in(PORTS),
    )
    async with moto_server as moto, _client(moto.base) as client:
        started = time.perf_counter()
        last = await fill(client, name, stream.records)
        source = Source(moto.base, name, last, psutil.Process(moto.child.pid))
        print(f"  kinesis: put {stream.records:,} records in {time.perf_counter() - started:.1f} s", flush=True)

        async def once(mode: str, _: int) -> Run:
            if mode == "ceiling":
                return await ceiling(client, source, stream.records)
            async with database.throwaway_database(server) as url:
                if mode == "tracker":
                    return await tracker_run(url, source, stream, work_dir)
                return await baseline_run(url, client, source, stream)

        return await interleaved(repetitions, ("ceiling", "tracker", "baseline"), once, _report)


def _report(mode: str, repetition: int, run: Run) -> str:
    extra = f"  consumer CPU {_micros(run.consumer_cpu, run.records)} us/record" if run.consumer_cpu else ""
    return (
        f"kinesis {mode:<8} #{repetition}: {run.per_second:8,.0f} records/s over {run.records:,}"
        f"  moto CPU {_micros(run.moto_cpu, run.records)} us/record{extra}"
    )


def _micros(seconds: float | None, records: int) -> str:
    return "n/a" if seconds is None else f"{seconds / records * 1e6:,.0f}"


def rows(runs: Sequence[Run], stream: Stream) -> list[Row]:
    def spread_of(mode: str, value: str = "rate") -> Spread | None:
        def figure(run: Run) -> float | None:
            if value == "rate":
                return run.per_second
            seconds: float | None = getattr(run, value)
            return None if seconds is None else seconds / run.records * 1e6

        return spread(figure(run) for run in runs if run.mode == mode)

    ours, baseline, ceiling_rate = spread_of("tracker"), spread_of("baseline"), spread_of("ceiling")
    assert ours is not None and baseline is not None and ceiling_rate is not None
    per_transaction = f"1 record per transaction ({stream.baseline_records:,} records)"
    bound = "moto GetRecords alone, nothing stored"
    return [
        Row(
            "kinesis",
            f"records/s, {SHARDS} shards, {stream.records:,} records",
            ours,
            per_transaction,
            baseline,
            f">= {GOAL_VS_BASELINE:.0f}x",
            ours.median >= GOAL_VS_BASELINE * baseline.median,
        ),
        Row(
            "kinesis",
            f"records/s, {SHARDS} shards, {stream.records:,} records",
            ours,
            bound,
            ceiling_rate,
            f">= {GOAL_PER_SECOND:,}/s",
            ours.median >= GOAL_PER_SECOND,
        ),
        Row("kinesis", "moto CPU us/record", spread_of("tracker", "moto_cpu"), bound, spread_of("ceiling", "moto_cpu")),
        Row("kinesis", "consumer CPU us/record (tracker consume)", spread_of("tracker", "consumer_cpu"), "", None),
        Row("kinesis", "PostgreSQL CPU us/record", spread_of("tracker", "postgres_cpu"), "", None),
    ]


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [{**asdict(run), "per_second": run.per_second} for run in runs]
