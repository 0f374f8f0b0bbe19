"""`python -m tests.drills [DRILL ...] [--quick] [--json FILE]`: run the reliability drills, print one table.

Every server listens on loopback, on a port of `--ports`; every drill is bounded in time. The exit status
is 1 if any drill lost an acknowledged delivery, stored one twice, or failed another check (each failure
is printed under the table), and 0 otherwise. Timings are reported, never checked, but for the bounds
a drill states (service back within 30 s of a fault, say).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.database import server_url

from . import alerts, crash, database_loss, flood, two_processes
from .audit import Audit
from .harness import Setup, setup
from .report import DrillResult, render
from .trackers import Ports

DRILLS = ("crash", "database-loss", "two-processes", "flood", "alerts")
EMBEDDED_DIR = Path(tempfile.gettempdir()) / "tracker-drills-postgres"
"""The drills' shared server when TRACKER_DATABASE_URL is not set (database-loss starts one of its own)."""


@dataclass(frozen=True, slots=True)
class Plan:
    crash: crash.CrashPlan
    outage: database_loss.OutagePlan
    two: two_processes.TwoPlan
    flood: flood.FloodPlan
    alerts: alerts.AlertPlan


FULL = Plan(
    crash.CrashPlan(20_000),
    database_loss.OutagePlan(20_000, outage=10.0),
    two_processes.TwoPlan(20_000),
    flood.FloodPlan(seconds=30.0, probe_seconds=10.0),
    alerts.AlertPlan(500),
)
QUICK = Plan(
    crash.CrashPlan(2_000, installations=200),
    database_loss.OutagePlan(2_000, outage=3.0, installations=200),
    two_processes.TwoPlan(2_000, installations=200),
    flood.FloodPlan(seconds=3.0, probe_seconds=2.0, max_in_flight=2_000, max_pending=500, installations=200),
    alerts.AlertPlan(100, refused=1.0, unavailable=1.0),
)
"""A few seconds of each: what `tests/test_drills.py` runs, at about this size."""


def drill(name: str, plan: Plan) -> Callable[[Setup], Awaitable[DrillResult]]:
    runs: dict[str, Callable[[Setup], Awaitable[DrillResult]]] = {
        "crash": lambda where: crash.run(where, plan.crash),
        "database-loss": lambda where: database_loss.run(where, plan.outage),
        "two-processes": lambda where: two_processes.run(where, plan.two),
        "flood": lambda where: flood.run(where, plan.flood),
        "alerts": lambda where: alerts.run(where, plan.alerts),
    }
    return runs[name]


async def run(names: list[str], plan: Plan, work: Path, ports: Ports) -> list[DrillResult]:
    """Run the drills one after the other; a drill that cannot finish is a failed row, not the end."""
    server = await server_url(EMBEDDED_DIR)
    results = []
    for name in names:
        print(f"  {name}...", flush=True)
        started = time.monotonic()
        try:
            result = await drill(name, plan)(setup(server, work, ports))
        except Exception as exc:  # reported in the table, and the exit status
            result = DrillResult(
                name, 0, time.monotonic() - started, "", Audit(problems=[f"{type(exc).__name__}: {exc}"])
            )
        print(f"  {name}: {'ok' if result.passed else 'FAILED'} in {time.monotonic() - started:.0f} s", flush=True)
        results.append(result)
    return results


def context(plan: Plan, quick: bool) -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load};"
        f" {'quick' if quick else 'full'} drills: crash {plan.crash.deliveries:,} deliveries"
        f" ({plan.crash.redeliveries:.0%} redeliveries, shuffled), {plan.crash.kills} kills;"
        f" database-loss {plan.outage.deliveries:,}, down {plan.outage.outage:.0f} s;"
        f" two-processes {plan.two.deliveries:,}; flood {plan.flood.factor:.0f}x for {plan.flood.seconds:.0f} s;"
        f" alerts {plan.alerts.transitions:,} transitions, receiver down {plan.alerts.refused:.0f} s refusing"
        f" + {plan.alerts.unavailable:.0f} s 503, 1 kill"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.drills", description=__doc__)
    parser.add_argument("drills", nargs="*", metavar="DRILL", help=f"{', '.join(DRILLS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="a few seconds of each (what CI runs, about)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--ports", type=Ports.parse, default=Ports(), help="loopback ports to use (18500-18599)")
    args = parser.parse_args()
    unknown = set(args.drills) - set(DRILLS)
    if unknown:
        parser.error(f"unknown drill(s): {', '.join(sorted(unknown))}; known: {', '.join(DRILLS)}")
    plan = QUICK if args.quick else FULL
    print(context(plan, args.quick), flush=True)
    work = Path(tempfile.mkdtemp(prefix="tracker-drills-"))
    results = asyncio.run(run(args.drills or list(DRILLS), plan, work, args.ports))
    passed = all(result.passed for result in results)
    print()
    print(render(results))
    print(f"load average after: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")
    if args.json:
        document: dict[str, Any] = {"plan": asdict(plan), "drills": [result.as_json() for result in results]}
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    if passed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"server and PostgreSQL logs kept in {work}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
