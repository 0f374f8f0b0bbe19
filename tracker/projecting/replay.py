"""Replaying a range of streams into a rebuild's shadow, each view built whole and copied in once: in the
rebuilding process, or in worker processes beside it (`replay_worker.py`), a range each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from projections.read_model import ReadModel, View
from tracker.projecting.folding import Failure, fold
from tracker.projecting.view_store import ViewStore
from tracker.store.database import Connection
from tracker.store.mapper import READ_COLUMNS, decode

PAGE = 5000
"""Rows per page: big enough that a round trip is cheap next to its fold, small enough to hold."""
_PAGE_SQL = (
    f"SELECT {READ_COLUMNS} FROM events"
    " WHERE (stream_id, version) > ($1, $2) AND stream_id < $3 AND position <= $4"
    " ORDER BY stream_id, version LIMIT $5"
)
"""The rows of other types are left out in Python, not here: with a type filter, PostgreSQL took the
connections' pages by bitmap scan and sort of all their events, every page (547 ms a page of 5,000
instead of 28 ms: quadratic in the log's size)."""

OnPage = Callable[[int, list[Failure]], Awaitable[None]]
"""Hears each page replayed: its events, and those that evolve() failed on."""


@dataclass(frozen=True, slots=True)
class StreamRange:
    """The stream ids from `start` (included) to `stop` (excluded)."""

    start: str
    stop: str

    @classmethod
    def of(cls, model: ReadModel[View]) -> StreamRange:
        """All the read model's streams: `installation:<id>` sorts after `installation:`, before `installation;`."""
        return cls(f"{model.stream_prefix}:", f"{model.stream_prefix};")


def shadow_of(model: ReadModel[View]) -> ViewStore[View]:
    """The tables a rebuild of `model` replays into, beside the live ones."""
    return ViewStore(model, f"rebuild_{model.table}", f"rebuild_{model.table}_issues")


async def replay(
    reader: Connection,
    writer: Connection,
    model: ReadModel[View],
    streams: StreamRange,
    *,
    head: int,
    blocked: set[str],
    on_page: OnPage,
) -> None:
    """Fold the events of `streams` up to position `head` into the shadow, stream by stream: the next page
    is read (by `reader`) while this one folds and the last one is copied (by `writer`). An entity whose
    event fails joins `blocked` (see `fold`)."""
    shadow, types, size = shadow_of(model), model.types, PAGE
    views: dict[str, View] = {}
    after: tuple[str, int] = (streams.start, 0)
    carried: tuple[str, str] | None = None  # the stream and key of the view that may go on in the next page

    def next_page() -> asyncio.Future[list[asyncpg.Record]]:
        return asyncio.ensure_future(reader.fetch(_PAGE_SQL, *after, streams.stop, head, size))

    fetching = next_page()
    writing: asyncio.Future[None] | None = None
    try:
        while rows := await fetching:
            after = (rows[-1]["stream_id"], rows[-1]["version"])
            fetching = next_page()
            events = [decode(row) for row in rows if row["type"] in types]
            folded = await fold(model, events, views, blocked)
            # The page's last stream may go on in the next one: keep its view, copy the rest.
            last_stream = rows[-1]["stream_id"]
            if events and events[-1].stream_id == last_stream:
                carried = (last_stream, model.key_of(events[-1]))
            elif carried is not None and carried[0] != last_stream:
                carried = None  # else a page of only other types, all of the carried view's stream
            going_on = carried[1] if carried is not None else None
            finished = [view for key, view in views.items() if key != going_on]
            views = {going_on: views[going_on]} if going_on in views else {}
            if writing is not None:
                await writing
            await on_page(len(events), folded.failures)
            writing = asyncio.ensure_future(shadow.copy(writer, finished))
        if writing is not None:
            await writing
    finally:
        for pending in (fetching, writing):
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
    await shadow.copy(writer, list(views.values()))
