"""The schema from `sql/`, by one process at a time and in one transaction: the numbered migrations
(`NNN_name.sql`: tables, indexes, data, drops), applied once each, then the repeatable files
(`repeatable/name.sql`: one function each, with its triggers), applied again whenever their text changes.

A repeatable file holds its object's current definition, written to be run again (CREATE OR REPLACE), so
its history stays in git and `sql/repeatable/` always reads as what the database runs. A release older than
the database (which has numbered migrations it lacks) applies no repeatable file: it would put its older
definitions back. One of the same numbered version cannot tell, so a fleet upgrades by `tracker migrate` with
the new release, then restarts every process on it (docs/deploying.md)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from tracker.store.database import Connection
from tracker.store.locks import MIGRATION_LOCK

log = logging.getLogger(__name__)

REPEATABLE_DIR = "repeatable"
"""The folder of `sql/` that holds the repeatable files."""
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_REPEATABLE_NAME = re.compile(r"^[a-z0-9_]+\.sql$")

_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS schema_repeatables ("
    " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
)


@dataclass(frozen=True, slots=True)
class Repeatable:
    """A file of `sql/repeatable/`, as read now."""

    name: str
    """The file's name, as `schema_repeatables` records it."""
    sql: str
    checksum: str
    """The SHA-256 of its text: a different one than recorded means the file changed since it was applied."""


def migrations_dir() -> Path:
    """`sql/` beside the package in a checkout, or inside it in an installed wheel."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "sql"
    return packaged if packaged.is_dir() else here.parent / "sql"


def _read_migrations() -> list[tuple[int, str, str]]:
    found = [(int(m.group(1)), p) for p in migrations_dir().iterdir() if (m := _NAME.match(p.name))]
    return [(version, path.name, path.read_text()) for version, path in sorted(found)]


def read_repeatables() -> list[Repeatable]:
    """The repeatable files in the order they are applied: by name.

    A plpgsql body resolves the names it uses when it runs, so functions may call each other in any order;
    a trigger is created in its function's file, after it."""
    found: list[Repeatable] = []
    for path in sorted(p for p in (migrations_dir() / REPEATABLE_DIR).iterdir() if _REPEATABLE_NAME.match(p.name)):
        text = path.read_text()
        found.append(Repeatable(path.name, text, hashlib.sha256(text.encode()).hexdigest()))
    return found


def _has_statements(sql: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("--") for line in sql.splitlines())


async def migrate(conn: Connection) -> list[str]:
    """Apply the numbered migrations not applied yet, then the repeatable files that changed; return their
    names (`NNN_name.sql`, `repeatable/name.sql`)."""
    migrations = await asyncio.to_thread(_read_migrations)
    repeatables = await asyncio.to_thread(read_repeatables)
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        for statement in _BOOKKEEPING:
            await conn.execute(statement)
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations:
            if version in done:
                continue
            if _has_statements(sql):  # asyncpg fails on comments alone: a migration whose functions moved
                await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied.append(name)
        newer = sorted(done - {version for version, _, _ in migrations})
        if newer:  # a newer release migrated the database: its definitions stay, not this release's older ones
            log.warning("the database has migrations this release lacks (%s): repeatable files not applied", newer)
        else:
            applied += await _apply_repeatables(conn, repeatables, after_migrations=bool(applied))
    for name in applied:
        log.info("applied %s", name)
    if not applied:  # debug: a command's output on a migrated database stays its own
        log.debug("the schema is up to date: %d migrations, %d repeatable files", len(migrations), len(repeatables))
    return applied


async def _apply_repeatables(conn: Connection, repeatables: list[Repeatable], *, after_migrations: bool) -> list[str]:
    """Apply the files whose checksum differs from the one recorded; all of them after a numbered migration,
    which may have dropped what one made (a table and its triggers, a function by CASCADE)."""
    rows = await conn.fetch("SELECT name, checksum FROM schema_repeatables")
    recorded = {row["name"]: row["checksum"] for row in rows}
    applied: list[str] = []
    for repeatable in repeatables:
        if recorded.get(repeatable.name) == repeatable.checksum and not after_migrations:
            continue
        await conn.execute(repeatable.sql)
        await conn.execute(
            "INSERT INTO schema_repeatables (name, checksum) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
            repeatable.name,
            repeatable.checksum,
        )
        applied.append(f"{REPEATABLE_DIR}/{repeatable.name}")
    # A file removed: what it made is dropped by a numbered migration; its row goes, so that a file of that
    # name added back later is applied.
    await conn.execute(
        "DELETE FROM schema_repeatables WHERE name <> ALL($1::text[])", [repeatable.name for repeatable in repeatables]
    )
    return applied
