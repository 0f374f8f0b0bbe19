"""Scenario `health`: filtering installations by health over HTTP, and a connection's error fanning out.

A fleet goes in through `Tracker.ingest` and `catch_up()` (as in `bench.rebuild`): connections, then
installations with a ~1 KB config, 5% with a paused read schedule (unhealthy) and 5% with a failed
write (degraded); `fan_out` of them share the connection `conn-fanout`, one has `conn-single` alone.

Filters: `tracker serve --projections none` runs as a child process on the loaded database; this process
is the client and sends one request at a time, walking the pages by `nextCursor`, wrapping around at
the end. The baselines are the unfiltered list and `?health=degraded`, timed in the same repetition.

Fan-out: `connection.error`, then `connection.refreshed`, for `conn-fanout` is ingested here and
`catch_up()` timed until every installation on it reads unhealthy, then its own status again; the
baseline is the same for `conn-single`, the cost of a projection batch without the fan-out.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import payloads
from bench.cpu import CpuMeter, find_postmaster
from bench.harness import CheckError, embedded_tracker, tracker_serve
from bench.stats import Spread, percentile, spread
from bench.table import Row
from tracker import Tracker

GOAL_P99_MS = 20.0
GOAL_FAN_OUT_MS = 1_000.0
FAN_OUT, SINGLE = "conn-fanout", "conn-single"
PAGE = 100
_WINDOW = 2_000
"""Notifications in flight at once while loading, as in `bench.rebuild`."""
_LOAD_TIMEOUT = 1_800.0
_WALK_TIMEOUT = 300.0
_CATCH_UP_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Fleet:
    installations: int
    fan_out: int
    """Installations on `conn-fanout`."""
    requests: int
    """Timed page requests per query and repetition, after the warm-up."""
    warmup: int
    connections: int = 100
    """Connections the other installations are spread over."""

    def connection_of(self, number: int) -> str:
        if number < self.fan_out:
            return FAN_OUT
        if number == self.installations - 1:
            return SINGLE
        return f"conn-{number % self.connections:03d}"

    def expected(self) -> dict[str, int]:
        """Installations by health once loaded: every 20th paused, every 20th (offset by one) failing writes."""
        counts = Counter(_trouble(number) or "healthy" for number in range(self.installations))
        return dict(counts)


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    params: dict[str, str]
    health: str | None
    """The status every served item must have; None: any."""


UNHEALTHY = Query("?health=unhealthy", {"health": "unhealthy"}, "unhealthy")
UNFILTERED = Query("unfiltered", {}, None)
DEGRADED = Query("?health=degraded", {"health": "degraded"}, "degraded")
QUERIES = (UNHEALTHY, UNFILTERED, DEGRADED)


@dataclass(frozen=True, slots=True)
class Latency:
    query: str
    repetition: int
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_ms: float
    """CPU of this (the benchmark's) process per request: aiohttp client, orjson parse, the checks."""
    server_cpu_ms: float
    database_cpu_ms: float | None


@dataclass(frozen=True, slots=True)
class FanOut:
    connection: str
    installations: int
    repetition: int
    error_ms: float
    refreshed_ms: float


@dataclass(frozen=True, slots=True)
class Result:
    load_s: float
    catch_up_s: float
    events: int
    latencies: list[Latency]
    fan_outs: list[FanOut]


PROJECT = "proj-0"
"""The fleet's one project: an installation joins its connection within its project only."""


def _trouble(number: int) -> str | None:
    return {1: "unhealthy", 2: "degraded"}.get(number % 20)


def _installation(fleet: Fleet, number: int, kind: str, **extra: Any) -> dict[str, Any]:
    data = {
        "projectId": PROJECT,
        "provider": "salesforce",
        "integrationId": f"integ-{number % 3}",
        "integrationName": "Salesforce sync",
        "installationId": payloads.installation_id(number),
        "connectionId": fleet.connection_of(number),
        "groupRef": f"group-{number:06d}",
        "groupName": f"Customer {number}",
        "consumerRef": f"user-{number % 997}",
        "consumerName": "Ada Lovelace",
        **extra,
    }
    return {"notificationType": kind, "data": data}


def _connection(connection_id: str, kind: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "projectId": PROJECT,
        "connectionId": connection_id,
        "provider": "salesforce",
        "groupRef": f"group-{connection_id}",
        "consumerRef": "user-0",
        "consumerName": "Ada Lovelace",
    }
    if kind == "connection.error":
        data["errors"] = ["token refresh failed: invalid_grant", "401 Unauthorized"]
    return {"notificationType": kind, "data": data}


def _phases(fleet: Fleet) -> Iterator[Iterable[dict[str, Any]]]:
    """The load in three phases, each with one event per stream: connections, installations, their troubles."""
    connections = {fleet.connection_of(number) for number in range(fleet.installations)}
    yield (_connection(connection_id, "connection.created") for connection_id in sorted(connections))
    yield (
        _installation(fleet, number, "installation.created", config=payloads.config(number))
        for number in range(fleet.installations)
    )
    yield (_troubled(fleet, number) for number in range(fleet.installations) if _trouble(number))


def _troubled(fleet: Fleet, number: int) -> dict[str, Any]:
    if _trouble(number) == "unhealthy":
        config = payloads.config(number)
        return _installation(fleet, number, "read.schedule.paused", config=config, error="Authentication failed")
    extra: dict[str, Any] = {
        "objectName": "contact",
        "success": False,
        "successfulRecordIds": [],
        "errors": ["field validation failed: Email", "duplicate record"],
    }
    return _installation(fleet, number, "write.async.done", **extra)


async def load(tracker: Tracker, fleet: Fleet) -> int:
    """Ingest the fleet, `_WINDOW` at a time, phase after phase; return the events ingested."""
    count = 0
    for phase in _phases(fleet):
        window: list[Awaitable[object]] = []
        for notification in phase:
            window.append(tracker.ingest(notification, delivery_id=f"health_{count:08d}"))
            count += 1
            if len(window) == _WINDOW:
                await asyncio.gather(*window)
                window = []
        await asyncio.gather(*window)
    return count


async def _health_counts(tracker: Tracker, connection_id: str | None = None) -> dict[str, int]:
    if connection_id is None:
        rows = await tracker.pool.fetch("SELECT health, count(*) AS n FROM installation_view GROUP BY health")
    else:
        rows = await tracker.pool.fetch(
            "SELECT health, count(*) AS n FROM installation_view WHERE connection_id = $1 GROUP BY health",
            connection_id,
        )
    return {row["health"]: row["n"] for row in rows}


async def _check_loaded(tracker: Tracker, fleet: Fleet, events: int) -> None:
    stored = await tracker.pool.fetchval("SELECT count(*) FROM events")
    if stored != events:
        msg = f"health: loaded {stored} events, expected {events}"
        raise CheckError(msg)
    counts = await _health_counts(tracker)
    if counts != fleet.expected():
        msg = f"health: installations by health {counts}, expected {fleet.expected()}"
        raise CheckError(msg)
    for connection_id, expected in ((FAN_OUT, fleet.fan_out), (SINGLE, 1)):
        on_it = sum((await _health_counts(tracker, connection_id)).values())
        if on_it != expected:
            msg = f"health: {on_it} installations on {connection_id}, expected {expected}"
            raise CheckError(msg)


async def _walk(
    session: aiohttp.ClientSession, base: str, query: Query, fleet: Fleet, *, meter: CpuMeter, repetition: int
) -> Latency:
    """`warmup + requests` sequential page requests; every item and every complete walk is checked."""
    expected_total = fleet.installations if query.health is None else fleet.expected()[query.health]
    latencies: list[float] = []
    cursor: str | None = None
    seen = 0
    client_cpu = 0.0
    for index in range(fleet.warmup + fleet.requests):
        if index == fleet.warmup:
            meter.start()
            client_cpu = time.process_time()
        params = {**query.params, "limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        started = time.perf_counter()
        async with session.get(f"{base}/v1/installations", params=params) as response:
            body = await response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            msg = f"health: {query.name}: answered {response.status}: {body[:300]!r}"
            raise CheckError(msg)
        page = orjson.loads(body)
        items = page["items"]
        wrong = [item["installationId"] for item in items if query.health and item["health"]["status"] != query.health]
        if wrong or (page["nextCursor"] and len(items) != PAGE):
            msg = f"health: {query.name}: a page of {len(items)} items, these with another health: {wrong[:5]}"
            raise CheckError(msg)
        seen += len(items)
        cursor = page["nextCursor"]
        if cursor is None:  # a whole walk: wrap around to the first page
            if seen != expected_total:
                msg = f"health: {query.name}: a walk over all pages served {seen} installations, not {expected_total}"
                raise CheckError(msg)
            seen = 0
    client_cpu = time.process_time() - client_cpu
    server_cpu, database_cpu = meter.stop()
    timed = sorted(latencies[fleet.warmup :])
    count = len(timed)
    return Latency(
        query.name,
        repetition,
        count,
        percentile(timed, 0.50) * 1e3,
        percentile(timed, 0.99) * 1e3,
        timed[-1] * 1e3,
        client_cpu / count * 1e3,
        server_cpu / count * 1e3,
        None if database_cpu is None else database_cpu / count * 1e3,
    )


async def _timed_catch_up(tracker: Tracker) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(tracker.catch_up(), _CATCH_UP_TIMEOUT)
    return (time.perf_counter() - started) * 1e3


async def _fan_out(tracker: Tracker, fleet: Fleet, connection_id: str, repetition: int) -> FanOut:
    """Time the projection of the connection's error, then of its refresh, checking the installations on it."""
    installations = fleet.fan_out if connection_id == FAN_OUT else 1
    own = await _health_counts(tracker, connection_id)
    timings = []
    for kind, expected in (("connection.error", {"unhealthy": installations}), ("connection.refreshed", own)):
        delivery = f"health_{kind}_{connection_id}_{repetition}"
        await tracker.ingest(_connection(connection_id, kind), delivery_id=delivery)
        timings.append(await _timed_catch_up(tracker))
        after = await _health_counts(tracker, connection_id)
        if after != expected:
            msg = f"health: after {kind} on {connection_id}, its installations read {after}, expected {expected}"
            raise CheckError(msg)
    if (counts := await _health_counts(tracker)) != fleet.expected():
        msg = f"health: after the fan-out on {connection_id}, installations by health {counts}, not {fleet.expected()}"
        raise CheckError(msg)
    return FanOut(connection_id, installations, repetition, *timings)


async def measure(url: str, fleet: Fleet, repetitions: int, work_dir: Path) -> Result:
    async with embedded_tracker(url) as tracker:
        started = time.perf_counter()
        events = await asyncio.wait_for(load(tracker, fleet), _LOAD_TIMEOUT)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        await asyncio.wait_for(tracker.catch_up(), _LOAD_TIMEOUT)
        catch_up_s = time.perf_counter() - started
        await _check_loaded(tracker, fleet, events)
        print(f"  health: ingested {events:,} events in {load_s:.1f} s, caught up in {catch_up_s:.1f} s", flush=True)
        await _fan_out(tracker, fleet, SINGLE, repetition=0)  # warm-up: the pool's statements and plans
        latencies: list[Latency] = []
        fan_outs: list[FanOut] = []
        async with tracker_serve("health-serve", url, work_dir, "--projections", "none") as server:
            meter = CpuMeter(server.child.pid, await find_postmaster(url))
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                for repetition in range(1, repetitions + 1):
                    for query in QUERIES:
                        walk = _walk(session, server.base, query, fleet, meter=meter, repetition=repetition)
                        latency = await asyncio.wait_for(walk, _WALK_TIMEOUT)
                        print(
                            f"  health {query.name:<18} #{repetition}: p50 {latency.p50_ms:5.1f} ms"
                            f"  p99 {latency.p99_ms:5.1f} ms  server CPU {latency.server_cpu_ms:.1f} ms/request",
                            flush=True,
                        )
                        latencies.append(latency)
                    for connection_id in (FAN_OUT, SINGLE):
                        fan_out = await _fan_out(tracker, fleet, connection_id, repetition)
                        print(
                            f"  health fan-out {connection_id:<12} #{repetition}: error {fan_out.error_ms:6.0f} ms"
                            f"  refreshed {fan_out.refreshed_ms:6.0f} ms",
                            flush=True,
                        )
                        fan_outs.append(fan_out)
            server.check_alive()
    return Result(load_s, catch_up_s, events, latencies, fan_outs)


def rows(result: Result, fleet: Fleet) -> list[Row]:
    def latency(query: Query, value: Callable[[Latency], float | None]) -> Spread | None:
        return spread(value(run) for run in result.latencies if run.query == query.name)

    def fan_out(connection_id: str, value: Callable[[FanOut], float]) -> Spread:
        return Spread.of([value(run) for run in result.fan_outs if run.connection == connection_id])

    def filter_row(measure: str, value: Callable[[Latency], float | None], baseline: Query) -> Row:
        ours = latency(UNHEALTHY, value)
        met = None
        if measure == "p99 ms" and baseline is UNFILTERED and ours is not None:
            met = ours.median < GOAL_P99_MS
        return Row(
            "health",
            f"filter {UNHEALTHY.name} {measure}, {fleet.installations:,} installations",
            ours,
            f"{baseline.name} ({served})",
            latency(baseline, value),
            "" if met is None else f"< {GOAL_P99_MS:.0f} ms",
            met,
            digits=1,
        )

    def fan_out_row(kind: str, value: Callable[[FanOut], float]) -> Row:
        ours = fan_out(FAN_OUT, value)
        goal = kind == "connection.error"
        return Row(
            "health",
            f"fan-out {kind} to {fleet.fan_out:,} installations ms (catch_up)",
            ours,
            "the same, connection with 1 installation",
            fan_out(SINGLE, value),
            f"< {GOAL_FAN_OUT_MS:,.0f} ms" if goal else "",
            ours.median < GOAL_FAN_OUT_MS if goal else None,
        )

    served = f"sequential GETs ?limit={PAGE}, tracker serve child"
    return [
        filter_row("p99 ms", lambda r: r.p99_ms, UNFILTERED),
        filter_row("p99 ms", lambda r: r.p99_ms, DEGRADED),
        filter_row("p50 ms", lambda r: r.p50_ms, UNFILTERED),
        filter_row("p50 ms", lambda r: r.p50_ms, DEGRADED),
        filter_row("server CPU ms/request", lambda r: r.server_cpu_ms, UNFILTERED),
        filter_row("PostgreSQL CPU ms/request", lambda r: r.database_cpu_ms, UNFILTERED),
        filter_row("client CPU ms/request (bench process)", lambda r: r.client_cpu_ms, UNFILTERED),
        fan_out_row("connection.error", lambda r: r.error_ms),
        fan_out_row("connection.refreshed", lambda r: r.refreshed_ms),
    ]


def as_json(result: Result) -> dict[str, Any]:
    return asdict(result)


def summary(fleet: Fleet) -> str:
    """The scenario's part of the table's context line."""
    return (
        f"health: {fleet.installations:,} installations, {fleet.fan_out:,} on one connection,"
        f" {fleet.requests:,} sequential page requests per query after {fleet.warmup:,} warm-up"
    )
