"""Following the log with one runner per read model, across every process: a runner folds only while its
process leads that read model, and stands by otherwise. Other single-process work (delivering alerts) leads
the same way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from tracker.projecting.runner import ProjectionRunner
from tracker.store.leadership import Leadership

log = logging.getLogger(__name__)


async def follow_while_leading(
    runner: ProjectionRunner[Any], leadership: Leadership, wake: asyncio.Event, interval: float, min_interval: float
) -> None:
    """Stand by until this process leads the read model, follow the log while it does, and stand by again
    should the lead be lost."""
    await while_leading(leadership, lambda: runner.run_forever(wake, interval, min_interval), interval)


async def while_leading(leadership: Leadership, work: Callable[[], Coroutine[Any, Any, None]], interval: float) -> None:
    """Run `work` only while this process holds `leadership`: stand by until it does, stop the work when the
    lead is lost, and stand by again."""
    while True:
        await leadership.acquire(interval)
        working = asyncio.create_task(work())
        try:
            await leadership.lost()
            log.warning("lost the lead of %s; standing by", leadership.name)
        finally:
            working.cancel()
            try:
                await working
            except asyncio.CancelledError:
                # The work's cancellation ends here; this task's own (the tracker closing while the
                # work winds down) must not, or closing would wait for this loop forever.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
