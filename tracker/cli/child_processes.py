"""`tracker` processes that `tracker serve` keeps running beside it: the projection runners, and more HTTP
processes on the same port.

Folding is CPU work; in the webhook's process it competes with the deliveries for one event loop
and adds to their latency. A child process (`tracker project`) takes the other core instead. The same
holds for the deliveries themselves: one event loop answers one request at a time, so a burst of
concurrent senders queues there while cores stand idle; `serve --processes N` adds HTTP processes that
share the port (`SO_REUSEPORT`: the kernel spreads the connections).
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


def projection_process(database_url: str) -> contextlib.AbstractAsyncContextManager[None]:
    """Keep a `tracker project` child running for as long as the block runs; stop it after."""
    return child_processes(database_url, {"projection process": ["project"]})


def http_processes(
    database_url: str, host: str, port: int, count: int, *, insecure_no_verify: bool
) -> contextlib.AbstractAsyncContextManager[None]:
    """Keep `count` more `tracker serve` children answering on `host:port` beside this one. They fold nothing
    and read no Kinesis stream: the parent's projection child and consumers do that once for all."""
    serve = ["serve", "--host", host, "--port", str(port), "--projections", "none", "--reuse-port"]
    if insecure_no_verify:  # the parent was allowed to listen publicly unsigned: so are its children
        serve.append("--insecure-no-verify")
    return child_processes(
        database_url, {f"HTTP process {n}": serve for n in range(2, count + 2)}, {"TRACKER_KINESIS_STREAMS": ""}
    )


@contextlib.asynccontextmanager
async def child_processes(
    database_url: str, commands: dict[str, list[str]], env: dict[str, str] | None = None
) -> AsyncIterator[None]:
    """Keep a `tracker` child running per command (by name) for as long as the block runs; stop them after."""
    # The URL the parent resolved (the embedded server's socket too): every process uses one database.
    environment = {**os.environ, "TRACKER_DATABASE_URL": database_url, **(env or {})}
    keepers = [
        asyncio.create_task(_keep_running(name, args, environment), name=name) for name, args in commands.items()
    ]
    try:
        yield
    finally:
        for keeper in keepers:
            keeper.cancel()
        for keeper in keepers:
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


async def _keep_running(name: str, args: list[str], env: dict[str, str]) -> None:
    delay = 1.0
    while True:
        # Its own session: a Ctrl-C at the terminal reaches the parent, which stops the child in order.
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tracker",
            *args,
            env=env,
            start_new_session=True,
            preexec_fn=_stop_with_parent,  # one libc call, no locks taken: safe after fork
        )
        try:
            code = await child.wait()
        except asyncio.CancelledError:
            await _stop(child)
            raise
        log.error("the %s exited with code %s; restarting it in %.0f s", name, code, delay)
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
