"""`python -m bench [SCENARIO ...|all] [--quick] [--json FILE]`: measure, then print one table.

Timings never fail the run (the machine is shared and noisy); a wrong answer, a count that does not
match or a child that dies does, with a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from bench import alerts, bulk_import, change_streams, database, health, kinesis, latency, query, rebuild, webhook
from bench.harness import Load
from bench.table import Row, render

SCENARIOS = ("webhook", "import", "rebuild", "query", "latency", "health", "kinesis", "streams", "alerts")
"""What `all` runs, in this order."""


@dataclass(frozen=True, slots=True)
class Plan:
    repetitions: int
    load: Load
    log: rebuild.Log
    fleet: health.Fleet
    file: bulk_import.File
    sizes: query.Sizes
    pace: latency.Pace
    stream: kinesis.Stream
    streams: change_streams.Streams
    alerting: alerts.Alerting


FULL = Plan(
    3,
    Load(requests=20_000, warmup=1_000, time_limit=120),
    rebuild.Log(1_000_000, 100_000),
    health.Fleet(100_000, 10_000, requests=1_000, warmup=100),
    bulk_import.File(500_000, 50_000),
    query.Sizes(1_000, 1_000_000, requests=5_000, warmup=500),
    latency.Pace(1_000, seconds=30, warmup=2),
    kinesis.Stream(100_000, baseline_records=4_000),
    change_streams.Streams(1_000, Load(requests=10_000, warmup=1_000, time_limit=60)),
    alerts.Alerting(1_000, seconds=30, warmup=2),
)
QUICK = Plan(
    1,
    Load(requests=2_000, warmup=200, time_limit=30),
    rebuild.Log(50_000, 5_000, library_events=1_000),  # the query scenario's large log too
    health.Fleet(10_000, 1_000, requests=200, warmup=50),
    bulk_import.File(20_000, 2_000),
    query.Sizes(1_000, 50_000, requests=1_000, warmup=200),
    latency.Pace(1_000, seconds=4, warmup=1),
    kinesis.Stream(10_000, baseline_records=400, time_limit=30),
    change_streams.Streams(1_000, Load(requests=2_000, warmup=200, time_limit=30)),
    alerts.Alerting(1_000, seconds=4, warmup=1),
)


async def run(scenarios: list[str], plan: Plan, profile_dir: Path | None) -> tuple[list[Row], dict[str, Any]]:
    server = await database.server_url()
    rows: list[Row] = []
    details: dict[str, Any] = {"plan": asdict(plan)}
    with tempfile.TemporaryDirectory(prefix="tracker-bench-") as tmp:
        work = Path(tmp)
        async with contextlib.AsyncExitStack() as databases:
            if "webhook" in scenarios:  # a database per server run
                runs = await webhook.measure(server, plan.load, plan.repetitions, work, profile_dir)
                rows += webhook.rows(runs)
                details["webhook"] = webhook.as_json(runs)
            if "import" in scenarios:  # a database per run
                imports = await bulk_import.measure(server, plan.file, plan.repetitions, work, profile_dir)
                rows += bulk_import.rows(imports, plan.file)
                details["import"] = bulk_import.as_json(imports)
            log_url = None  # the rebuild scenario's log, kept for the query scenario when it is the size it needs
            if "rebuild" in scenarios:
                log_url = await databases.enter_async_context(database.throwaway_database(server))
                replays = await rebuild.measure(log_url, plan.log, plan.repetitions, work, profile_dir)
                rows += rebuild.rows(replays, plan.log)
                details["rebuild"] = rebuild.as_json(replays)
            if "query" in scenarios:
                sizes = plan.sizes
                same = (sizes.large, sizes.installations(sizes.large)) == (plan.log.events, plan.log.installations)
                queries = await query.measure(server, sizes, plan.repetitions, work, log_url if same else None)
                rows += query.rows(queries, sizes)
                details["query"] = query.as_json(queries)
        if "latency" in scenarios:  # a database per run
            paced = await latency.measure(server, plan.pace, plan.repetitions, work, profile_dir)
            rows += latency.rows(paced, plan.pace)
            details["latency"] = latency.as_json(paced)
        if "health" in scenarios:
            async with database.throwaway_database(server) as url:
                health_result = await health.measure(url, plan.fleet, plan.repetitions, work)
            rows += health.rows(health_result, plan.fleet)
            details["health"] = health.as_json(health_result)
        if "kinesis" in scenarios:  # a database per run
            streamed = await kinesis.measure(server, plan.stream, plan.repetitions, work)
            rows += kinesis.rows(streamed, plan.stream)
            details["kinesis"] = kinesis.as_json(streamed)
        if "streams" in scenarios:  # a database per run
            held = await change_streams.measure(server, plan.streams, plan.repetitions, work)
            rows += change_streams.rows(held, plan.streams)
            details["streams"] = change_streams.as_json(held)
        if "alerts" in scenarios:  # a database per run
            alerted = await alerts.measure(server, plan.alerting, plan.repetitions, work)
            rows += alerts.rows(alerted, plan.alerting)
            details["alerts"] = alerts.as_json(alerted)
    return rows, details


def _context(plan: Plan) -> str:
    load = plan.load
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}; {plan.repetitions} repetition(s), figures are"
        f" {'medians (min-max)' if plan.repetitions > 1 else 'single runs'}; webhook: {load.requests:,} signed"
        f" requests after {load.warmup:,} warm-up, {load.workers} senders; rebuild: {plan.log.events:,} events,"
        f" {plan.log.installations:,} installations; import: {plan.file.lines:,} NDJSON lines;"
        f" {query.summary(plan.sizes)}; {latency.summary(plan.pace)}; {health.summary(plan.fleet)};"
        f" {kinesis.summary(plan.stream)}; {change_streams.summary(plan.streams)}; {alerts.summary(plan.alerting)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "scenario", nargs="*", metavar="SCENARIO", help=f"one or more of {', '.join(SCENARIOS)}; all by default"
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition, small counts (what CI runs)")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="sample the tracker with py-spy into DIR (figures then read low)"
    )
    parser.add_argument("--repetitions", type=int, help="override the plan's repetitions (3; 1 with --quick)")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    plan = QUICK if args.quick else FULL
    if args.repetitions:
        plan = replace(plan, repetitions=args.repetitions)
    if unknown := set(args.scenario) - {*SCENARIOS, "all"}:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    scenarios = list(SCENARIOS) if not args.scenario or "all" in args.scenario else args.scenario
    print(_context(plan), flush=True)
    try:
        rows, details = asyncio.run(run(scenarios, plan, args.profile))
    except (AssertionError, RuntimeError, OSError) as exc:
        print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print()
    print(render(rows))
    if args.profile:
        print(f"\npy-spy samples and top frames (*.top.txt) in {args.profile}")
    if args.json:
        args.json.write_bytes(
            orjson.dumps({**details, "table": [row.cells() for row in rows]}, option=orjson.OPT_INDENT_2)
        )


if __name__ == "__main__":
    main()
