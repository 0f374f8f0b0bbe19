"""Following the log with one runner per read model, across every process: a runner folds only while its
process leads that read model, and stands by otherwise."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tracker.projecting.runner import ProjectionRunner
from tracker.store.leadership import Leadership

log = logging.getLogger(__name__)


async def follow_while_leading(
    runner: ProjectionRunner[Any], leadership: Leadership, wake: asyncio.Event, interval: float, min_interval: float
) -> None:
    """Stand by until this process leads the read model, follow the log while it does, and stand by again
    should the lead be lost."""
    while True:
        await leadership.acquire(interval)
        following = asyncio.create_task(runner.run_forever(wake, interval, min_interval))
        try:
            await leadership.lost()
            log.warning("lost the lead of %s; standing by", runner.model.name)
        finally:
            following.cancel()
            try:
                await following
            except asyncio.CancelledError:
                # The runner's cancellation ends here; this task's own (the tracker closing while the
                # runner winds down) must not, or closing would wait for this loop forever.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
