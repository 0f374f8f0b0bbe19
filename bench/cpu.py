"""CPU seconds spent by the server under test and by PostgreSQL, read from outside with psutil.

With two cores shared by generator, server and database, CPU per notification says more about
where the time goes than throughput alone.
"""

from __future__ import annotations

import asyncpg
import psutil  # type: ignore[import-untyped]  # (types-psutil is not a dependency)


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU seconds of the process so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def _cpu_with_children(process: psutil.Process) -> float:
    """The server's CPU including its children (`tracker serve` folds projections in a child)."""
    total = cpu_seconds(process)
    for child in process.children(recursive=True):
        try:
            total += cpu_seconds(child)
        except psutil.Error:
            continue  # exited meanwhile
    return total


class CpuMeter:
    """CPU used by a process, and optionally by every process of a local PostgreSQL cluster.

    With no `pid`, only the cluster's (for a child that exits before the meter stops: its own CPU it reports itself).
    """

    def __init__(self, pid: int | None, postmaster: int | None) -> None:
        self._process = psutil.Process(pid) if pid is not None else None
        self._postmaster = psutil.Process(postmaster) if postmaster is not None else None
        self._server_start = 0.0
        self._cluster_start = 0.0

    def start(self) -> None:
        self._server_start = _cpu_with_children(self._process) if self._process is not None else 0.0
        self._cluster_start = self._cluster()

    def stop(self) -> tuple[float, float | None]:
        """CPU seconds since `start` of the server, and of the cluster (None if it is not visible)."""
        server = _cpu_with_children(self._process) - self._server_start if self._process is not None else 0.0
        if self._postmaster is None:
            return server, None
        return server, self._cluster() - self._cluster_start

    def _cluster(self) -> float:
        """The cluster's CPU so far: its live processes, and the backends that have exited (the postmaster
        reaps them, so their seconds are in its children's times), which a short-lived client's are."""
        if self._postmaster is None:
            return 0.0
        try:
            times = self._postmaster.cpu_times()
        except psutil.Error:
            return 0.0
        total = float(times.children_user + times.children_system)
        for process in [self._postmaster, *self._postmaster.children()]:
            try:
                total += cpu_seconds(process)
            except psutil.Error:
                continue  # exited meanwhile: counted as reaped from now on
        return total


async def find_postmaster(url: str) -> int | None:
    """The PostgreSQL server's main pid when it runs on this machine and we may read it, else None."""
    conn = await asyncpg.connect(url)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        parent = psutil.Process(backend).parent()  # while the backend lives
    except psutil.Error:
        return None
    finally:
        await conn.close()
    if parent is None or "postgres" not in parent.name():
        return None
    return int(parent.pid)
