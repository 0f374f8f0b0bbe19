"""The asyncpg pool and the codecs every connection needs."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

Pool = asyncpg.Pool
Connection = asyncpg.Connection | PoolConnectionProxy
"""A dedicated connection or one borrowed from the pool: both run queries alike."""


def _encode_jsonb(value: Any) -> bytes:
    if isinstance(value, bytes):  # already JSON (eventsourcing's transcoder output): no second encode
        return b"\x01" + value
    return b"\x01" + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """Binary jsonb through orjson: COPY needs binary codecs, and orjson is the fast path."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", format="binary", encoder=_encode_jsonb, decoder=_decode_jsonb
    )


async def _keep_session(conn: Connection) -> None:
    """Skip asyncpg's reset query on release (a round trip each time): pooled connections keep no
    session state here (locks are transaction-scoped but for a rebuild's, which it releases or ends
    the session for; LISTEN has its own connection), and asyncpg still rolls back a transaction left
    open before calling this."""


async def create_pool(database_url: str, size: int) -> Pool:
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=size, init=init_connection, reset=_keep_session, command_timeout=30
    )
    assert pool is not None
    return pool


async def connect(database_url: str) -> asyncpg.Connection:
    """A dedicated connection, for LISTEN and locks that a pooled connection would drop on release."""
    conn: asyncpg.Connection = await asyncpg.connect(database_url)
    await init_connection(conn)
    return conn
