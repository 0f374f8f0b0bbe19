"""`python -m bench [webhook|rebuild|health|all] [--quick] [--json FILE]`: measure, then print one table.

Timings never fail the run (the machine is shared and noisy); a wrong answer, a count that does not
match or a child that dies does, with a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from bench import database, health, rebuild, webhook
from bench.table import Row, render


@dataclass(frozen=True, slots=True)
class Plan:
    repetitions: int
    load: webhook.Load
    log: rebuild.Log
    fleet: health.Fleet


FULL = Plan(
    3,
    webhook.Load(requests=20_000, warmup=1_000, time_limit=120),
    rebuild.Log(200_000, 20_000),
    health.Fleet(100_000, 10_000, requests=1_000, warmup=100),
)
QUICK = Plan(
    1,
    webhook.Load(requests=2_000, warmup=200, time_limit=30),
    rebuild.Log(20_000, 2_000),
    health.Fleet(10_000, 1_000, requests=200, warmup=50),
)


async def run(scenarios: list[str], plan: Plan, profile_dir: Path | None) -> tuple[list[Row], dict[str, Any]]:
    server = await database.server_url()
    rows: list[Row] = []
    details: dict[str, Any] = {"plan": asdict(plan)}
    with tempfile.TemporaryDirectory(prefix="tracker-bench-") as work:
        if "webhook" in scenarios:  # a database per server run
            runs = await webhook.measure(server, plan.load, plan.repetitions, Path(work), profile_dir)
            rows += webhook.rows(runs)
            details["webhook"] = webhook.as_json(runs)
        if "rebuild" in scenarios:
            async with database.throwaway_database(server) as url:
                replays = await rebuild.measure(url, plan.log, plan.repetitions, Path(work), profile_dir)
            rows += rebuild.rows(replays, plan.log)
            details["rebuild"] = rebuild.as_json(replays)
        if "health" in scenarios:
            async with database.throwaway_database(server) as url:
                health_result = await health.measure(url, plan.fleet, plan.repetitions, Path(work))
            rows += health.rows(health_result, plan.fleet)
            details["health"] = health.as_json(health_result)
    return rows, details


def _context(plan: Plan) -> str:
    load = plan.load
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}; {plan.repetitions} repetition(s), figures are"
        f" {'medians (min-max)' if plan.repetitions > 1 else 'single runs'}; webhook: {load.requests:,} signed"
        f" requests after {load.warmup:,} warm-up, {load.workers} senders; rebuild: {plan.log.events:,} events,"
        f" {plan.log.installations:,} installations; {health.summary(plan.fleet)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", nargs="?", choices=("webhook", "rebuild", "health", "all"), default="all")
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
    scenarios = ["webhook", "rebuild", "health"] if args.scenario == "all" else [args.scenario]
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
