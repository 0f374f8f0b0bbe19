"""`GET /v1/changes`: the change feed as Server-Sent Events, resumable with `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from tracker.api.keys import services_of
from tracker.api.responses import error_response
from tracker.api.routing import Access, Answer, RouteTable, header, query
from tracker.api.schemas import ChangeEvent
from tracker.api.scopes import scope_of
from tracker.store.changes import Change

routes = RouteTable()
STREAMS: web.AppKey[set[EventSourceResponse]] = web.AppKey("change_streams")
"""The open streams, to end on shutdown."""
SLOTS: web.AppKey[asyncio.Semaphore] = web.AppKey("change_stream_slots", asyncio.Semaphore)
"""One per stream the process may hold open (TRACKER_MAX_CHANGE_STREAMS); a stream takes one or is refused."""
BUSY_RETRY_AFTER = {"Retry-After": "10"}
"""A refused client waits this long: a slot frees only when some other client goes, so sooner is rarely better."""
PING_INTERVAL = 15.0
"""Seconds between keep-alive comments, so proxies and browsers keep an idle stream open."""
SEND_TIMEOUT = 60.0
"""A client that stopped reading is cut off once a write has waited this long; its stream holds a page meanwhile."""
RETRY_MS = 2000
"""How long a browser's EventSource waits before it reconnects (with Last-Event-ID)."""
MAX_SEQ = 2**63 - 1
"""`view_changes.seq` is a bigint: a larger start is a 400, not a 500."""


def _start(request: web.Request) -> int | None:
    """Where to resume: `Last-Event-ID` (a reconnecting EventSource sends it), else `?after=`; None: from now."""
    given = request.headers.get("Last-Event-ID") or request.query.get("after")
    if given is None:
        return None
    if not given.isascii() or not given.isdigit() or int(given) > MAX_SEQ:
        msg = f"Last-Event-ID and after must be a change's seq: an integer from 0 to {MAX_SEQ}"
        raise ValueError(msg)
    return int(given)


@routes.get(
    "/v1/changes", Access.SCOPED,
    "Installations, connections and destinations as they change, as Server-Sent Events",
    Answer("an endless stream: `id:` the seq, `event:` the entity, `data:` a `ChangeEvent` as JSON",
           media=("text/event-stream",), events=ChangeEvent),
    errors={503: "the database is unreachable, or the process holds as many streams open as it may"
                 " (`TRACKER_MAX_CHANGE_STREAMS`)"},
    parameters=(query("after", {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                      "resume after this seq (else from now)"),
                header("Last-Event-ID", {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                       "what a reconnecting EventSource sends; wins over `after`")),
)  # fmt: skip
async def changes(request: web.Request) -> web.StreamResponse:
    """Each installation, connection and destination as it changes: `event:` the entity, `id:` the seq,
    `data:` {seq, entity, entityId, position, document}. Without a start, only what changes from now."""
    try:
        after = _start(request)
    except ValueError as exc:
        return error_response(400, str(exc))
    slots = request.app[SLOTS]
    if slots.locked():
        return error_response(503, "as many change streams are open as this server holds: retry later",
                              headers=BUSY_RETRY_AFTER)  # fmt: skip
    async with slots:  # not locked: taken at once, before anything else can take it
        return await _stream(request, after)


async def _stream(request: web.Request, after: int | None) -> web.StreamResponse:
    feed = services_of(request).queries.change_feed
    if after is None:
        after = await feed.head()
    streams = request.app[STREAMS]
    async with sse_response(request, ping_interval=PING_INTERVAL, send_timeout=SEND_TIMEOUT) as stream:
        streams.add(stream)
        try:
            # Set the client's last id at once: should it reconnect before any change, it resumes here.
            await stream.write(f"retry: {RETRY_MS}\r\nid: {after}\r\n\r\n".encode())
            sending = asyncio.create_task(_send(stream, feed.follow(after, scope_of(request).projects)))
            ended = asyncio.create_task(stream.wait())  # the client went, or the server shuts down
            await asyncio.wait((sending, ended), return_when=asyncio.FIRST_COMPLETED)
            for task in (sending, ended):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
        finally:
            streams.discard(stream)
    return stream


async def _send(stream: EventSourceResponse, changes: AsyncGenerator[Change, None]) -> None:
    """Send each change the feed hands out: only the token's projects' (the feed leaves out the others)."""
    async with contextlib.aclosing(changes):  # leave the feed now, not when the generator is collected
        async for change in changes:
            data = orjson.dumps(change.to_json()).decode()
            await stream.send(data, id=str(change.seq), event=change.entity)


async def end_streams(app: web.Application) -> None:
    """On shutdown: a stream never ends by itself, and the server would wait for it; end each cleanly."""
    streams = app[STREAMS]
    for stream in list(streams):
        stream.stop_streaming()


def setup(app: web.Application, max_streams: int) -> None:
    streams: set[EventSourceResponse] = set()
    app[STREAMS] = streams
    app[SLOTS] = asyncio.Semaphore(max_streams)
    app.on_shutdown.append(end_streams)
