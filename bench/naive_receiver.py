"""The baseline receiver: one INSERT per request, in its own transaction, through an asyncpg pool.

It is what one writes first: decode the body to find the type and entity, then insert one row
(same columns as the tracker's log: stream id, type, payload jsonb, raw, metadata, unique dedupe
key). The INSERT runs alone, so PostgreSQL commits it as its own transaction in one round trip,
the cheapest form of "a transaction per request". It checks no signature: only storage differs.

    python -m bench.naive_receiver --port PORT --database-url URL
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from bench.receiver_server import serve
from tracker.store.database import init_connection

POOL = web.AppKey("pool", asyncpg.Pool)
TABLE = "naive_events"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id   text        NOT NULL,
    type        text        NOT NULL,
    payload     jsonb       NOT NULL,
    raw         bytea       NOT NULL,
    metadata    jsonb       NOT NULL,
    dedupe_key  text        NOT NULL UNIQUE,
    received_at timestamptz NOT NULL
)
"""
_INSERT = f"""
INSERT INTO {TABLE} (stream_id, type, payload, raw, metadata, dedupe_key, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING position
"""
_ID_FIELDS = (("installationId", "installation"), ("connectionId", "connection"), ("destinationId", "destination"))


async def database(url: str, pool_size: int, app: web.Application) -> AsyncIterator[None]:
    async with asyncpg.create_pool(url, min_size=1, max_size=pool_size, init=init_connection) as pool:
        await pool.execute(_CREATE)
        app[POOL] = pool
        yield


def stream_id(notification: dict[str, Any]) -> str:
    data = notification["data"]
    for field, prefix in _ID_FIELDS:
        if isinstance(data.get(field), str):
            return f"{prefix}:{data[field]}"
    return f"unrouted:{notification['notificationType']}"


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    notification = orjson.loads(body)
    delivery_id = request.headers.get("svix-id", "")
    received_at = datetime.now(UTC)
    metadata = {"source": "webhook", "deliveryId": delivery_id, "receivedAt": received_at.isoformat()}
    pool = request.app[POOL]
    position = await pool.fetchval(
        _INSERT,
        stream_id(notification),
        notification["notificationType"],
        notification["data"],
        body,
        metadata,
        f"svix:{delivery_id}",
        received_at,
    )
    duplicate = position is None
    if duplicate:
        position = await pool.fetchval(f"SELECT position FROM {TABLE} WHERE dedupe_key = $1", f"svix:{delivery_id}")
    return web.Response(
        body=orjson.dumps({"duplicate": duplicate, "position": position}), content_type="application/json"
    )


def main() -> None:
    serve("python -m bench.naive_receiver", __doc__, receive, database, "as the tracker's default pool")


if __name__ == "__main__":
    main()
