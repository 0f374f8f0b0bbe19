"""The projection runners in a process of their own, beside `tracker serve`.

Folding is CPU work; in the webhook's process it competes with the deliveries for one event loop
and adds to their latency. A child process (`tracker project`) takes the other core instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

_STOP_GRACE = 10.0
_MAX_RESTART_DELAY = 30.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
"""Loaded before any fork: the child may only make the call, not load a library."""


def _stop_with_parent() -> None:
    """Run in the child before exec: a SIGKILLed `tracker serve` must not leave its child folding on,
    orphaned (its own session keeps it out of the parent's process group, so nothing else would stop it)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.asynccontextmanager
async def projection_process(database_url: str) -> AsyncIterator[None]:
    """Keep a `tracker project` child running for as long as the block runs; stop it after."""
    keeper = asyncio.create_task(_keep_running(database_url), name="projection-process")
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _keep_running(database_url: str) -> None:
    # The URL the parent resolved (the embedded server's socket too): both processes use one database.
    env = {**os.environ, "TRACKER_DATABASE_URL": database_url}
    delay = 1.0
    while True:
        # Its own session: a Ctrl-C at the terminal reaches the parent, which stops the child in order.
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tracker",
            "project",
            env=env,
            start_new_session=True,
            preexec_fn=_stop_with_parent,  # one libc call, no locks taken: safe after fork
        )
        try:
            code = await child.wait()
        except asyncio.CancelledError:
            await _stop(child)
            raise
        log.error("the projection process exited with code %s; restarting it in %.0f s", code, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_RESTART_DELAY)


async def _stop(child: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.terminate()
    try:
        await asyncio.wait_for(child.wait(), _STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
