"""The one path every notification takes, whatever door it came in by.

Convert (parse, route to a stream, map to the stored form: `convert_delivery`), keep what is refused in the
quarantine with the reason, whichever step refused it (`refusal`: the one row a refused delivery becomes),
append, and count (`Pipeline.count`: every delivery is counted and logged there, by source, type and outcome).
A delivery goes alone through the group commit (`Pipeline.ingest`: the webhook, `Tracker.ingest`, a replay), or
with others in one transaction (`convert_batch`, then `append_batch`: a chunk of a file import; a Kinesis page,
in the transaction that moves its shard's checkpoint). Events the tracker writes itself (a fetched config) take
`append_own`, and are counted alike (`count_own`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from eventsourcing.persistence import Mapper, StoredEvent

from tracker.domain import route
from tracker.ingest.dedupe import bounded, dedupe_key
from tracker.ingest.parsing import NotJSONObjectError, Parsed, SchemaError
from tracker.metrics import UNKNOWN_TYPE, Metrics, type_label
from tracker.store.database import Connection, Pool
from tracker.store.errors import (
    EventRefusedError,
    OverloadedError,
    StoreUnavailableError,
    UnavailableGuard,
    refused_by_database,
)
from tracker.store.event_log import Appended, EventLog, NewEvent
from tracker.store.group_commit import GroupCommit
from tracker.store.quarantine import Quarantine, Refused
from tracker.turns import give_way

log = logging.getLogger(__name__)
REFUSED = (NotJSONObjectError, SchemaError, EventRefusedError)
"""What a sender cannot fix by retrying: the delivery is quarantined, then the error is raised."""
_CONVERTED_BETWEEN_TURNS = 100
"""Deliveries a batch converts between two turns of the other tasks (the COPY of an import's chunk before goes
on, the API answers)."""


class ConversionError(EventRefusedError):
    """A delivery that passed the checks yet could not be made an event: a gap in the checks.

    Refused like any bad delivery, so that it waits in quarantine for a replay once the gap is closed,
    and its door goes on: a webhook answers 4xx, a Kinesis shard and an import move past it.
    """

    notification_type: str | None
    """The type, when the delivery was parsed before the failure."""

    def __init__(self, reason: str, notification_type: str | None) -> None:
        super().__init__(reason)
        self.notification_type = notification_type


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a notification reached us: kept in the event's metadata (or the quarantine's row)."""

    source: str  # webhook | import | kinesis | api
    raw: bytes
    delivery_id: str | None = None
    signature_verified: bool = False
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    headers: Mapping[str, str] = field(default_factory=dict)
    replayed_from: int | None = None
    """The quarantine row a replay re-ingests (`Tracker.replay_quarantined`)."""
    line: int | None = None
    """The line of the file an import read it from, counted from 1: named in the reason of a refusal."""
    transport: Mapping[str, Any] | None = None
    """Where its transport had it (a Kinesis record's stream, shard and sequence number): in the event's metadata
    under the source's name, and in the headers of its quarantine row as `<source>-<field-in-kebab-case>`."""

    def reason(self, exc: Exception) -> str:
        """Why the delivery was refused, with the line an import found it on."""
        return str(exc) if self.line is None else f"line {self.line}: {exc}"

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "source": self.source,
            "deliveryId": self.delivery_id,
            "receivedAt": self.received_at.isoformat(),
            "signatureVerified": self.signature_verified,
        }
        if self.replayed_from is not None:
            metadata["replayedFromQuarantine"] = self.replayed_from
        if self.transport is not None:
            metadata[self.source] = dict(self.transport)
        return metadata

    def kept_headers(self) -> Mapping[str, str]:
        """The headers its quarantine row keeps: those it came with, and its transport's fields."""
        if self.transport is None:
            return self.headers
        transport = {f"{self.source}-{_kebab(key)}": str(value) for key, value in self.transport.items()
                     if value is not None}  # fmt: skip
        return {**self.headers, **transport}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A delivery refused, as its quarantine row keeps it, and its type when it was parsed (for the count)."""

    row: Refused
    notification_type: str | None


@dataclass(frozen=True, slots=True)
class Batch:
    """Deliveries converted for one transaction (`Pipeline.convert_batch`): the events of those not refused, each
    with its delivery's index, the same events as the log stores them, and the refusals by index."""

    deliveries: list[Delivery]
    events: list[tuple[int, NewEvent]]
    stored: list[StoredEvent]
    refused: dict[int, Refusal]
    started: float
    """When the conversion began (`time.perf_counter`): each delivery's latency runs from it to the commit."""


class Pipeline:
    def __init__(
        self, pool: Pool, commit: GroupCommit, event_log: EventLog, quarantine: Quarantine, metrics: Metrics
    ) -> None:
        self._pool = pool
        self._commit = commit
        self._event_log = event_log
        self._quarantine = quarantine
        self._metrics = metrics

    @property
    def overloaded(self) -> bool:
        """No room to queue another append: a delivery now would only be refused after parsing it."""
        return self._commit.full

    async def ingest(
        self,
        parse: Callable[[bytes], Parsed],
        delivery: Delivery,
        *,
        wait_for_room: bool = False,
        quarantine: bool = True,
    ) -> Appended:
        """Append the delivery's notification; resolves once its transaction has committed.

        Raises one of REFUSED once the delivery is in quarantine (with `quarantine=False`, a replay of a
        row kept there already, without keeping it again), or StoreUnavailableError / OverloadedError when
        the sender should retry later.
        """
        started = time.perf_counter()
        notification_type: str | None = None
        try:
            try:
                event, stored = convert_delivery(parse, delivery, self._event_log.mapper)
                notification_type = event.notification_type
                appended = await self._commit.append(event, stored, wait_for_room=wait_for_room)
            except REFUSED as exc:
                refused = _refusal(delivery, exc, notification_type)
                if quarantine:
                    await self._quarantine.keep(refused.row)
                self._count_refusal(delivery, refused, time.perf_counter() - started)
                raise
        except (StoreUnavailableError, OverloadedError) as exc:
            seconds = time.perf_counter() - started
            self.count(
                delivery.source, notification_type, "unavailable", seconds, delivery.delivery_id, reason=str(exc)
            )
            raise
        outcome = "duplicate" if appended.duplicate else "stored"
        seconds = time.perf_counter() - started
        self.count(delivery.source, notification_type, outcome, seconds, delivery.delivery_id, appended=appended)
        return appended

    async def convert_batch(self, parse: Callable[[bytes], Parsed], deliveries: Iterable[Delivery]) -> Batch:
        """Convert many deliveries for one transaction (`append_batch`), setting those refused aside with the
        reason. Apart, so that an import converts a chunk while the one before it is appended."""
        batch = Batch([], [], [], {}, time.perf_counter())
        mapper = self._event_log.mapper
        for index, delivery in enumerate(deliveries):
            batch.deliveries.append(delivery)
            try:
                event, stored = convert_delivery(parse, delivery, mapper)
            except REFUSED as exc:
                batch.refused[index] = _refusal(delivery, exc, None)
            else:
                batch.events.append((index, event))
                batch.stored.append(stored)
            await give_way(index + 1, _CONVERTED_BETWEEN_TURNS)
        return batch

    async def append_batch(
        self, batch: Batch, transaction: AbstractAsyncContextManager[Connection] | None = None
    ) -> list[bool | None]:
        """Append a converted batch and keep its refused deliveries in one transaction, then count each delivery:
        for each, True if appended, False if a duplicate, None if quarantined.

        `transaction` opens the connection to write on and commits, with the batch, what else the caller wrote on
        it (a Kinesis shard's checkpoint); by default a transaction of the batch's own, which raises
        StoreUnavailableError when the database fails. The events go in one COPY; should the database refuse
        one, one by one, so that it alone is quarantined and its neighbours stored.
        """
        refused = dict(batch.refused)
        async with transaction or self._transaction() as conn:
            appended = await self._append_on(conn, batch, batch.events, batch.stored, refused)
            if refused:
                await self._quarantine.keep_on(conn, [refused[index].row for index in sorted(refused)])
        seconds = time.perf_counter() - batch.started
        types = {index: event.notification_type for index, event in batch.events}
        outcomes: list[bool | None] = []
        for index, delivery in enumerate(batch.deliveries):
            if index in refused:
                self._count_refusal(delivery, refused[index], seconds)
                outcomes.append(None)
            else:
                outcomes.append(fresh := appended[index])
                self.count(delivery.source, types[index], "stored" if fresh else "duplicate", seconds)
        return outcomes

    async def append_own(self, event: NewEvent, source: str) -> Appended:
        """Append an event the tracker writes itself (a fetched config), waiting for room, and count it under
        `source`; resolves once its transaction has committed.

        Nothing to parse or quarantine: what a refusal (EventRefusedError) means is the caller's to record.
        StoreUnavailableError when the caller should retry later.
        """
        started = time.perf_counter()
        try:
            appended = await self._commit.append(event, wait_for_room=True)
        except StoreUnavailableError as exc:
            self.count_own(source, event, "unavailable", time.perf_counter() - started, reason=str(exc))
            raise
        outcome = "duplicate" if appended.duplicate else "stored"
        self.count_own(source, event, outcome, time.perf_counter() - started, appended=appended)
        return appended

    def count(
        self,
        source: str,
        notification_type: str | None,
        outcome: str,
        seconds: float | None = None,
        delivery_id: str | None = None,
        *,
        appended: Appended | None = None,
        reason: str | None = None,
        label: str | None = None,
    ) -> None:
        """Count a delivery by source, type and outcome (`seconds`: from its conversion to its commit) and log it:
        the routine outcomes at DEBUG (a line per notification would cost the webhook about 5% of its CPU), the
        ones an operator should see at WARNING.

        The type is counted by a bounded label: `type_label`'s, never a sender's spelling, or `label`, the type
        an event of the tracker's own declares (`count_own`).
        """
        self._metrics.delivered(source, label or type_label(notification_type), outcome, seconds)
        level = logging.DEBUG if outcome in ("stored", "duplicate") else logging.WARNING
        if not log.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "source": source,
            "delivery_id": delivery_id,
            "notification_type": notification_type,
            "outcome": outcome,
        }
        if seconds is not None:
            fields["latency_ms"] = round(seconds * 1000, 3)
        if appended is not None:
            fields |= {"position": appended.position, "stream_id": appended.stream_id}
        if reason is not None:
            fields["reason"] = reason
        log.log(level, "notification %s", outcome, extra=fields)

    def count_own(
        self,
        source: str,
        event: NewEvent,
        outcome: str,
        seconds: float | None = None,
        *,
        appended: Appended | None = None,
        reason: str | None = None,
    ) -> None:
        """Count an event the tracker wrote itself (a fetched config, an operator action) as `count` counts a
        delivery, under the type its class declares."""
        label = event.event_class.NOTIFICATION_TYPE or UNKNOWN_TYPE
        self.count(source, event.notification_type, outcome, seconds, appended=appended, reason=reason, label=label)

    def _count_refusal(self, delivery: Delivery, refused: Refusal, seconds: float) -> None:
        reason = refused.row.reason
        self.count(delivery.source, refused.notification_type, "quarantined", seconds, delivery.delivery_id,
                   reason=reason)  # fmt: skip

    async def _append_on(
        self,
        conn: Connection,
        batch: Batch,
        events: list[tuple[int, NewEvent]],
        stored: list[StoredEvent],
        refused: dict[int, Refusal],
    ) -> dict[int, bool]:
        """Append `events` by COPY, each delivery's index to True if appended, False if a duplicate; should the
        database refuse one, one by one, each refused added to `refused`."""
        if not events:
            return {}
        try:
            async with conn.transaction():  # a savepoint: a refusal leaves the batch's transaction usable
                fresh = await self._event_log.copy_append_on(conn, [event for _, event in events], stored)
        except asyncpg.PostgresError as exc:
            if not refused_by_database(exc):
                raise
            if len(events) == 1:
                ((index, event),) = events
                error = EventRefusedError(f"the database refused the event: {exc}")
                refused[index] = _refusal(batch.deliveries[index], error, event.notification_type)
                return {}
            appended: dict[int, bool] = {}
            for one, stored_one in zip(events, stored, strict=True):  # one by one, to keep the others
                appended |= await self._append_on(conn, batch, [one], [stored_one], refused)
            return appended
        return {index: appended for (index, _), appended in zip(events, fresh, strict=True)}

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """A transaction of a batch's own (an import's chunk); a failing database: StoreUnavailableError."""
        try:
            with UnavailableGuard("event log"):
                async with self._pool.acquire() as conn, conn.transaction():
                    yield conn
        except asyncpg.PostgresError as exc:
            raise StoreUnavailableError(f"event log unavailable: {type(exc).__name__}") from exc


def convert_delivery(
    parse: Callable[[bytes], Parsed], delivery: Delivery, mapper: Mapper[str]
) -> tuple[NewEvent, StoredEvent]:
    """Turn a delivery into its event and that event as the log stores it (`mapper`, the log's): the one
    conversion of every door.

    Raises one of REFUSED for a delivery that cannot be an event, whichever step fails: a failure the
    checks did not foresee (ConversionError) must refuse that delivery, not fail the door it came in by.
    """
    step, notification_type = "parse", None
    try:
        notification = parse(delivery.raw)
        step, notification_type = "route", notification.notification_type
        event = new_event(notification, delivery)
        step = "map"
        return event, event.to_stored(mapper)
    except REFUSED:
        raise
    except Exception as exc:
        # The traceback, which names the gap in the code, goes to the log; the sender is told what failed only.
        log.warning("cannot %s a delivery", step, exc_info=exc, extra={"delivery_id": delivery.delivery_id})
        msg = f"cannot {step} the delivery: {type(exc).__name__}: {exc}"
        raise ConversionError(msg, notification_type) from exc


def new_event(notification: Parsed, delivery: Delivery) -> NewEvent:
    """The event to append for a parsed notification: its stream, domain event class and dedupe key."""
    stream_id, event_class = route(notification.notification_type, notification.data)
    metadata = delivery.metadata()
    if notification.metadata:
        metadata["recordMetadata"] = notification.metadata
    return NewEvent(
        stream_id=stream_id,
        event_class=event_class,
        notification_type=notification.notification_type,
        data=notification.data,
        raw=delivery.raw,
        metadata=metadata,
        dedupe_key=dedupe_key(notification, delivery.delivery_id, delivery.raw),
        received_at=delivery.received_at,
    )


def refusal(delivery: Delivery, exc: Exception) -> Refused:
    """The quarantine row that keeps a refused delivery with the reason: the one row of every door, whichever
    step refused it."""
    problems = exc.problems if isinstance(exc, SchemaError) else []
    delivery_id = delivery.delivery_id
    kept_id = bounded(delivery_id) if delivery_id else None
    full_id = delivery_id if delivery_id and kept_id != delivery_id else None
    return Refused(delivery.source, delivery.reason(exc), delivery.raw, kept_id, problems, delivery.kept_headers(),
                   delivery.signature_verified, full_id)  # fmt: skip


def _refusal(delivery: Delivery, exc: Exception, notification_type: str | None) -> Refusal:
    if isinstance(exc, SchemaError | ConversionError):
        notification_type = exc.notification_type
    return Refusal(refusal(delivery, exc), notification_type)


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name)
