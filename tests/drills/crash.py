"""Drill `crash`: `tracker serve` is killed with SIGKILL at random moments under load, and started again.

The sender re-sends whatever got no 2xx (a killed server answers nothing), like Svix. Each kill must also
take the serve's projection child with it (an orphan would fold on, unwatched), and the restarted server
must go on from the log as it is: the audit then checks the log and the read models.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from bench.database import throwaway_database

from .deliveries import LoadPlan, Record, Sender, session
from .harness import Setup, audit, served, settle, under_load, until_acknowledged
from .report import DrillResult, answers


@dataclass(frozen=True, slots=True)
class CrashPlan(LoadPlan):
    kills: int = 3
    seed: int = 9


async def run(where: Setup, crash: CrashPlan) -> DrillResult:
    deliveries = crash.planned()
    distinct = len({d.msg_id for d in deliveries})
    rng = random.Random(crash.seed)
    moments = sorted(rng.uniform(0.1, 0.9) for _ in range(crash.kills))
    """The shares of ids acknowledged at which the kills fall."""
    record = Record()
    notes: list[str] = []
    async with throwaway_database(where.database_url) as url:
        async with served(Setup(url, where.secret, where.work, where.ports), "crash-serve") as (serve,):

            async def kill_and_restart(sending: asyncio.Task[None], deadline: float) -> None:
                for moment in moments:
                    at = await until_acknowledged(record, moment * distinct, sending, deadline)
                    orphan_s = await serve.kill()
                    down = time.monotonic()
                    await asyncio.sleep(rng.uniform(0.0, 1.0))
                    await serve.start()
                    notes.append(
                        f"SIGKILL at {at:,}/{distinct:,} acknowledged: its projection child gone"
                        f" {orphan_s:.1f} s later, serving again after {time.monotonic() - down:.1f} s"
                    )

            async with session(crash.workers) as http:
                sender = Sender(http, where.secret, lambda _: serve.webhook, record=record, seed=crash.seed)
                seconds = await under_load(sender, deliveries, crash.workers, crash.time_limit, kill_and_restart)
            await settle([serve], starts=1 + crash.kills)
        result = await audit(url, record, [serve])
    lost_answers = sum(1 for msg_id in record.acknowledged if not record.first_stores[msg_id])
    notes += [
        f"{lost_answers:,} ids were stored by a request whose answer the kill cut off (a re-send said duplicate)",
        f"answers: {answers(record)}",
    ]
    return DrillResult(
        "crash",
        record.requests,
        seconds,
        f"{crash.kills} x SIGKILL of tracker serve",
        result,
        notes,
        {"statuses": {str(k): v for k, v in record.statuses.items()}, "errors": dict(record.errors)},
    )
