"""The schema `migrate` makes, checked against tests/schema.snapshot.sql, and the repeatable files' bookkeeping.

The snapshot is read from PostgreSQL's catalogs, in an order and a form that do not depend on the server's
version or collation, so a change to `sql/` shows in review as a diff of the schema it makes. After an
intended change, refresh it: UPDATE_SCHEMA_SNAPSHOT=1 .venv/bin/pytest tests/test_schema.py
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tracker.store import migrations
from tracker.store.locks import APPEND_LOCK, HEALTH_LOCK
from tracker.store.migrations import migrate, migrations_dir

from .conftest import throwaway_database

SNAPSHOT = Path(__file__).with_name("schema.snapshot.sql")
REFRESH = "UPDATE_SCHEMA_SNAPSHOT"

_HEADER = f"""\
-- The schema a fresh `migrate` makes, as PostgreSQL's catalogs describe it (tests/test_schema.py). Not run:
-- read it to see every table, index, constraint, function and trigger in one place. To refresh it after a
-- change to sql/: {REFRESH}=1 .venv/bin/pytest tests/test_schema.py
"""

# Names sort byte by byte (COLLATE "C"), whatever the database's collation. Objects of extensions are left out.
_TABLES = """
SELECT c.oid, c.relname, c.relkind::text, c.reloptions FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname COLLATE "C"
"""
_COLUMNS = """
SELECT quote_ident(a.attname) AS attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
       CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END AS identity,
       CASE a.attgenerated WHEN 's' THEN 'STORED' WHEN 'v' THEN 'VIRTUAL' END AS generated,
       pg_get_expr(ad.adbin, ad.adrelid) AS expr,
       CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(co.collname) END AS collation,
       CASE WHEN a.attstorage <> t.typstorage THEN
           CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END
       END AS storage
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# NOT NULL is a column's (PostgreSQL 18 also lists it as a constraint, 'n', which 15 does not).
_CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
WHERE conrelid = $1 AND contype <> 'n' ORDER BY conname COLLATE "C"
"""
_INDEXES = """
SELECT i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename = $1
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = to_regclass(quote_ident(i.indexname)))
ORDER BY i.indexname COLLATE "C"
"""
_TRIGGERS = """
SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger
WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname COLLATE "C"
"""
_SEQUENCES = """
SELECT s.sequencename, s.data_type::text, s.start_value, s.increment_by,
       (SELECT format('%I.%I', t.relname, a.attname) FROM pg_depend d
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass AND d.deptype IN ('a', 'i')
       ) AS owned_by,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
               AND d.deptype = 'i') AS identity
FROM pg_sequences s WHERE s.schemaname = 'public' ORDER BY s.sequencename COLLATE "C"
"""
_FUNCTIONS = """
SELECT pg_get_functiondef(p.oid) AS def FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
ORDER BY p.proname COLLATE "C", pg_get_function_identity_arguments(p.oid) COLLATE "C"
"""
_EXTENSIONS = "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname COLLATE \"C\""


def _column(row: asyncpg.Record) -> str:
    parts = [row["attname"], row["type"]]
    if row["collation"]:
        parts.append(f"COLLATE {row['collation']}")
    if row["storage"]:
        parts.append(f"STORAGE {row['storage']}")
    if row["attnotnull"]:
        parts.append("NOT NULL")
    if row["identity"]:
        parts.append(f"GENERATED {row['identity']} AS IDENTITY")
    elif row["generated"]:
        parts.append(f"GENERATED ALWAYS AS ({row['expr']}) {row['generated']}")
    elif row["expr"] is not None:
        parts.append(f"DEFAULT {row['expr']}")
    return " ".join(parts)


async def dump_schema(conn: asyncpg.Connection) -> str:
    """The schema of the public schema as text, the same for the same schema on any server."""
    out = [_HEADER]
    out += [f"CREATE EXTENSION {row['extname']};\n" for row in await conn.fetch(_EXTENSIONS)]
    for table in await conn.fetch(_TABLES):
        if table["relkind"] in ("v", "m"):
            definition = await conn.fetchval("SELECT pg_get_viewdef($1, true)", table["oid"])
            kind = "VIEW" if table["relkind"] == "v" else "MATERIALIZED VIEW"
            out.append(f"CREATE {kind} {table['relname']} AS\n{definition.rstrip().rstrip(';')};\n")
            continue
        lines = [_column(row) for row in await conn.fetch(_COLUMNS, table["oid"])]
        lines += [f"CONSTRAINT {row['conname']} {row['def']}" for row in await conn.fetch(_CONSTRAINTS, table["oid"])]
        options = f" WITH ({', '.join(table['reloptions'])})" if table["reloptions"] else ""
        body = ",\n".join(f"    {line}" for line in lines)
        out.append(f"CREATE TABLE {table['relname']} (\n{body}\n){options};")
        out += [f"{row['indexdef']};" for row in await conn.fetch(_INDEXES, table["relname"])]
        out += [f"{row['def']};" for row in await conn.fetch(_TRIGGERS, table["oid"])]
        out.append("")
    for row in await conn.fetch(_SEQUENCES):
        if row["identity"]:
            continue  # its column says GENERATED ... AS IDENTITY
        owned = f" OWNED BY {row['owned_by']}" if row["owned_by"] else ""
        out.append(
            f"CREATE SEQUENCE {row['sequencename']} AS {row['data_type']}"
            f" START {row['start_value']} INCREMENT {row['increment_by']}{owned};"
        )
    out.append("")
    out += [f"{row['def'].rstrip()};\n" for row in await conn.fetch(_FUNCTIONS)]
    return "\n".join(out).rstrip() + "\n"


@pytest.fixture(scope="module")
async def migrated(server_url: str) -> AsyncIterator[str]:
    """A database of its own, migrated once from nothing."""
    async with throwaway_database(server_url, "schema_test") as url:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield url


@pytest.fixture
async def scratch(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new empty database, for a test that migrates it its own way."""
    async with throwaway_database(server_url, "schema_scratch") as url:
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()


async def test_a_fresh_migrate_makes_the_schema_of_the_snapshot(migrated: str) -> None:
    conn = await asyncpg.connect(migrated)
    try:
        schema = await dump_schema(conn)
    finally:
        await conn.close()
    if os.environ.get(REFRESH) == "1":
        SNAPSHOT.write_text(schema)
    expected = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    if schema != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), schema.splitlines(True),
                                            f"{SNAPSHOT.name} (committed)", "the schema migrate made"))  # fmt: skip
        pytest.fail(f"the schema differs from {SNAPSHOT}; if the change is intended, run"
                    f" {REFRESH}=1 .venv/bin/pytest tests/test_schema.py and commit the file\n{diff}")  # fmt: skip


async def test_the_sql_lock_keys_are_those_of_python(migrated: str) -> None:
    conn = await asyncpg.connect(migrated)
    try:
        keys = tuple(await conn.fetchrow("SELECT tracker_append_lock(), tracker_health_lock()") or ())
    finally:
        await conn.close()
    assert keys == (APPEND_LOCK, HEALTH_LOCK)


def test_no_other_sql_file_writes_a_lock_key() -> None:
    """Functions take the keys from `tracker_*_lock()`: each number is written in one file, in decimal or hex."""
    owners = {"tracker_append_lock.sql": APPEND_LOCK, "tracker_health_lock.sql": HEALTH_LOCK}
    written = []
    for path in sorted(migrations_dir().rglob("*.sql")):
        text = path.read_text().lower().replace("_", "")
        for owner, key in owners.items():
            found = [spelling for spelling in (str(key), f"{key:x}") if spelling in text]
            if path.name == owner:
                assert len(found) == 1, (owner, found)
            elif found:
                written.append((path.name, found))
    assert written == []


async def test_migrating_again_applies_nothing_and_changes_nothing(migrated: str) -> None:
    conn = await asyncpg.connect(migrated)
    try:
        before = await dump_schema(conn)
        assert await migrate(conn) == []
        assert await dump_schema(conn) == before
        recorded = await conn.fetch("SELECT name FROM schema_repeatables ORDER BY name")
    finally:
        await conn.close()
    files = sorted(path.name for path in (migrations_dir() / "repeatable").glob("*.sql"))
    assert [row["name"] for row in recorded] == files
    assert len(files) >= 9


async def test_a_repeatable_file_is_applied_again_when_it_changes(
    scratch: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(migrations_dir(), sql)
    monkeypatch.setattr(migrations, "migrations_dir", lambda: sql)
    probe = sql / "repeatable" / "zz_probe.sql"
    probe.write_text("CREATE OR REPLACE FUNCTION zz_probe() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n")
    applied = await migrate(scratch)
    assert "018_access_hardening.sql" in applied
    assert "repeatable/zz_probe.sql" in applied
    assert await scratch.fetchval("SELECT zz_probe()") == 1

    assert await migrate(scratch) == []
    probe.write_text("CREATE OR REPLACE FUNCTION zz_probe() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;\n")
    assert await migrate(scratch) == ["repeatable/zz_probe.sql"]  # only the file that changed
    assert await scratch.fetchval("SELECT zz_probe()") == 2

    # A numbered migration may drop what a repeatable file made: every file is applied again after one.
    (sql / "999_drop_probe.sql").write_text("DROP FUNCTION zz_probe();\n")
    applied = await migrate(scratch)
    assert applied[0] == "999_drop_probe.sql"
    assert sorted(applied[1:]) == sorted(f"repeatable/{path.name}" for path in (sql / "repeatable").glob("*.sql"))
    assert await scratch.fetchval("SELECT zz_probe()") == 2

    # A removed file leaves its row behind no more: added back, it is applied again.
    probe.unlink()
    assert await migrate(scratch) == []
    assert await scratch.fetchval("SELECT count(*) FROM schema_repeatables WHERE name = 'zz_probe.sql'") == 0


async def test_a_migration_of_comments_only_is_recorded(
    scratch: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = tmp_path / "sql"
    (sql / "repeatable").mkdir(parents=True)
    (sql / "001_nothing.sql").write_text("-- Its statements moved to a repeatable file.\n\n  -- indented\n")
    monkeypatch.setattr(migrations, "migrations_dir", lambda: sql)
    assert await migrate(scratch) == ["001_nothing.sql"]
    assert await scratch.fetchval("SELECT name FROM schema_migrations WHERE version = 1") == "001_nothing.sql"


async def test_a_release_older_than_the_database_leaves_its_functions_alone(
    scratch: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(migrations_dir(), sql)
    monkeypatch.setattr(migrations, "migrations_dir", lambda: sql)
    await migrate(scratch)
    await scratch.execute("INSERT INTO schema_migrations (version, name) VALUES (999, '999_newer.sql')")
    lock = sql / "repeatable" / "tracker_health_lock.sql"
    lock.write_text(lock.read_text().replace("x'747261636B03'", "x'7472'"))  # an older release's definition

    assert await migrate(scratch) == []
    assert await scratch.fetchval("SELECT tracker_health_lock()") == HEALTH_LOCK
