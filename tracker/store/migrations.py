"""Forward-only numbered migrations from `sql/`, applied once each, by one process at a time."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tracker.store.database import Connection

_MIGRATION_LOCK = 0x7472_6163_6B01  # advisory lock key: two processes starting together migrate once
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migrations_dir() -> Path:
    """`sql/` beside the package in a checkout, or inside it in an installed wheel."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "sql"
    return packaged if packaged.is_dir() else here.parent / "sql"


def _read_migrations() -> list[tuple[int, str, str]]:
    found = [(int(m.group(1)), p) for p in migrations_dir().iterdir() if (m := _NAME.match(p.name))]
    return [(version, path.name, path.read_text()) for version, path in sorted(found)]


async def migrate(conn: Connection) -> list[str]:
    """Apply the migrations not applied yet; return their file names."""
    files = await asyncio.to_thread(_read_migrations)
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in files:
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied.append(name)
    return applied
