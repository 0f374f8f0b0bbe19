"""LISTEN for appends on a dedicated connection, and come back after the database does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from tracker.store.database import connect
from tracker.store.errors import UNAVAILABLE_ERRORS
from tracker.store.event_log import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


async def listen_for_appends(
    database_url: str, on_append: Callable[[], None], retry_interval: float, channel: str = NOTIFY_CHANNEL
) -> None:
    """Call `on_append` on every NOTIFY of the log (or of `channel`), reconnecting for as long as it runs.

    A pooled connection would drop its LISTEN on release, so this one is its own. A NOTIFY only wakes
    the runners (they also poll), so one lost while reconnecting costs at most a poll interval.
    """
    while True:
        try:
            conn = await connect(database_url)
        except UNAVAILABLE_ERRORS as exc:
            log.warning("cannot listen for appends (%s); retrying in %.0f s", type(exc).__name__, retry_interval)
            await asyncio.sleep(retry_interval)
            continue
        closed = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _, closed=closed: closed.set())
            await conn.add_listener(channel, lambda *_: on_append())
            on_append()  # something may have been appended while nobody listened
            await closed.wait()
            log.warning("the connection listening for appends closed; reconnecting")
        finally:
            with contextlib.suppress(*UNAVAILABLE_ERRORS):
                await conn.close(timeout=2)
