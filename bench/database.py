"""The benchmark's PostgreSQL: the configured server or the embedded one, and a throwaway database on it."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tracker.store.embedded import start_embedded_postgres

EMBEDDED_DIR = Path(tempfile.gettempdir()) / "tracker-bench-postgres"
"""Kept between runs so only the first run pays for initdb; the server stops when the bench exits."""


async def server_url(embedded_dir: Path = EMBEDDED_DIR) -> str:
    """TRACKER_DATABASE_URL's server if set, else the embedded one in `embedded_dir` (started, or joined if
    running)."""
    configured = os.environ.get("TRACKER_DATABASE_URL")
    if configured:
        return configured
    return await start_embedded_postgres(embedded_dir)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def throwaway_database(url: str) -> AsyncIterator[str]:
    """Create `bench_<random>` on the server at `url`, yield its URL, and drop it afterwards."""
    name = f"bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield with_database(url, name)
        finally:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


async def count_rows(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()
