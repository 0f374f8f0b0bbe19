"""The library baseline: an aiohttp receiver whose handler calls an eventsourcing `Application` command.

What the eventsourcing library offers for this job as its documentation shows it: the command gets
the entity's aggregate from the repository (its stream read back from PostgreSQL), triggers the
notification's domain event on it and saves it, through `eventsourcing.postgres` (psycopg, one
transaction per save that locks the events table and notifies). The library is synchronous, so the
handler runs the command in the default executor (`asyncio.to_thread`), never on the event loop.
The aggregates and events are the tracker's own (`tracker.domain`), so only the path differs. A
delivery id is kept in the same transaction and a redelivery stores nothing, as in the naive receiver;
like it, it checks no signature.

    python -m bench.library_receiver --port PORT --database-url URL
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from aiohttp import web
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from bench.receiver_server import serve
from tracker.domain import route
from tracker.domain.base import TrackerAggregate, UnrecognizedEvent

APP = web.AppKey("app", Application)
NAME = "Library"
TABLE = f"{NAME.lower()}_events"
"""The library names its events table after the application."""
DELIVERIES = "library_deliveries"
_CONFLICT_ATTEMPTS = 10


class DedupRecorder(PostgresApplicationRecorder):
    """The library's recorder, keeping the delivery id in the save's transaction (the notes' recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        create = SQL("CREATE TABLE IF NOT EXISTS {0} (delivery_id text PRIMARY KEY)").format(Identifier(DELIVERIES))
        self.sql_create_statements.append(create)
        self._insert_delivery = SQL("INSERT INTO {0} (delivery_id) VALUES (%s)").format(Identifier(DELIVERIES))

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        curs.execute(self._insert_delivery, (kwargs["delivery_id"],))


class Library(Application[str]):
    """The tracker's entities as library aggregates; one command per notification."""

    name = NAME

    def record(self, notification_type: str, data: dict[str, Any], received_at: datetime, delivery_id: str) -> int:
        """Append the notification to its entity's stream; return its notification id (0: a redelivery)."""
        stream_id, event_class = route(notification_type, data)
        fields: dict[str, Any] = {"timestamp": received_at, "data": data}
        if issubclass(event_class, UnrecognizedEvent):
            fields["notification_type"] = notification_type
        for _ in range(_CONFLICT_ATTEMPTS):
            try:
                aggregate: TrackerAggregate = self.repository.get(stream_id)
            except AggregateNotFoundError:
                aggregate = event_class.AGGREGATE.open(stream_id, 1, received_at)
            aggregate.trigger_event(event_class, **fields)
            try:
                recordings = self.save(aggregate, delivery_id=delivery_id)
            except IntegrityError as exc:
                if f"{DELIVERIES}_pkey" in str(exc):
                    return 0
                continue  # another thread appended to the stream first: read it again
            return int(recordings[-1].notification.id)
        msg = f"{stream_id}: still conflicting after {_CONFLICT_ATTEMPTS} attempts"
        raise RuntimeError(msg)


def library_env(url: str, pool_size: int) -> dict[str, str]:
    """The library's settings for the server at `url` (host may be a socket directory, as the embedded one's)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": get_topic(DedupRecorder),
        "ORIGINATOR_ID_TYPE": "text",
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(parts.port or query.get("port", ["5432"])[0]),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
    }


async def application(url: str, pool_size: int, app: web.Application) -> AsyncIterator[None]:
    library = await asyncio.to_thread(Library, library_env(url, pool_size))  # runs DDL: off the loop
    app[APP] = library
    try:
        yield
    finally:
        await asyncio.to_thread(library.close)


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    notification = orjson.loads(body)
    delivery_id = request.headers.get("svix-id", "")
    library: Library = request.app[APP]  # type: ignore[assignment]
    position = await asyncio.to_thread(
        library.record, notification["notificationType"], notification["data"], datetime.now(UTC), delivery_id
    )
    return web.Response(
        body=orjson.dumps({"duplicate": position == 0, "position": position}), content_type="application/json"
    )


def main() -> None:
    serve(
        "python -m bench.library_receiver",
        __doc__,
        receive,
        application,
        "psycopg connections: at least the default executor's threads",
    )


if __name__ == "__main__":
    main()
