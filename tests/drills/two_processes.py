"""Drill `two-processes`: two `tracker serve` processes on one database, the senders split between them.

Deliveries alternate between the two, so a redelivery often reaches the other process than its first
copy, at about the same time: the dedupe key must hold across processes, the positions the two answer
with must be the log's, and one projection runner per read model (whichever process leads it) must fold
everything both appended.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.database import throwaway_database

from .deliveries import LoadPlan, Record, Sender, session
from .harness import Setup, audit, no_faults, served, settle, under_load
from .report import DrillResult, answers


@dataclass(frozen=True, slots=True)
class TwoPlan(LoadPlan):
    """`workers`: senders in all, half for each process."""

    seed: int = 12


async def run(where: Setup, two: TwoPlan) -> DrillResult:
    deliveries = two.planned()
    record = Record()
    async with throwaway_database(where.database_url) as url:
        async with served(Setup(url, where.secret, where.work, where.ports), "two-serve", count=2) as serves:
            urls = [serve.webhook for serve in serves]
            async with session(two.workers) as http:
                sender = Sender(http, where.secret, lambda index: urls[index % len(urls)], record=record, seed=two.seed)
                seconds = await under_load(sender, deliveries, two.workers, two.time_limit, no_faults)
            await settle(serves)
        result = await audit(url, record, serves)
    return DrillResult(
        "two-processes",
        record.requests,
        seconds,
        "none (2 processes, 1 database)",
        result,
        [f"answers: {answers(record)}"],
        {"statuses": {str(k): v for k, v in record.statuses.items()}},
    )
