"""The one path every notification takes, whatever door it came in by.

Convert (parse, route to a stream, map to the stored form: `convert_delivery`, which Kinesis records go
through too), quarantine what is refused, whichever step refused it, append. The webhook, the file import
and `Tracker.ingest` differ only in how they parse and in what they know of the delivery.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from eventsourcing.persistence import Mapper, StoredEvent

from tracker.domain import route
from tracker.ingest.dedupe import bounded, dedupe_key
from tracker.ingest.parsing import NotJSONObjectError, Parsed, SchemaError
from tracker.metrics import Metrics, type_label
from tracker.store.errors import EventRefusedError, OverloadedError, StoreUnavailableError, refused_by_database
from tracker.store.event_log import Appended, EventLog, NewEvent
from tracker.store.group_commit import GroupCommit
from tracker.store.quarantine import Quarantine, Refused
from tracker.turns import give_way

log = logging.getLogger(__name__)
REFUSED = (NotJSONObjectError, SchemaError, EventRefusedError)
"""What a sender cannot fix by retrying: the delivery is quarantined, then the error is raised."""
_PARSED_BETWEEN_TURNS = 100
"""Lines an import parses between two turns of the other tasks (the COPY of the chunk before goes on)."""


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
        return metadata


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """Deliveries parsed for one COPY: the events of those not refused, each with its delivery's index, and
    the same events as the log stores them."""

    parse: Callable[[bytes], Parsed]
    deliveries: Sequence[Delivery]
    parsed: list[tuple[int, NewEvent]]
    stored: list[StoredEvent]


class Pipeline:
    def __init__(self, commit: GroupCommit, event_log: EventLog, quarantine: Quarantine, metrics: Metrics) -> None:
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
                await self._refuse(delivery, exc, notification_type, started=started, keep=quarantine)
                raise
        except (StoreUnavailableError, OverloadedError) as exc:
            self._report(delivery, notification_type, "unavailable", started=started, reason=str(exc))
            raise
        outcome = "duplicate" if appended.duplicate else "stored"
        self._report(delivery, notification_type, outcome, started=started, appended=appended)
        return appended

    async def parse_many(self, parse: Callable[[bytes], Parsed], deliveries: Sequence[Delivery]) -> ParsedBatch:
        """Parse and map many deliveries for one COPY (`tracker import`), quarantining those refused;
        `append_many` appends the rest. Apart, so that an import parses a chunk while the one before it is
        appended."""
        started = time.perf_counter()
        parsed: list[tuple[int, NewEvent]] = []
        stored: list[StoredEvent] = []
        for index, delivery in enumerate(deliveries):
            try:
                event, stored_event = convert_delivery(parse, delivery, self._event_log.mapper)
            except REFUSED as exc:
                await self._refuse(delivery, exc, None, started=started)
            else:
                parsed.append((index, event))
                stored.append(stored_event)
            await give_way(index + 1, _PARSED_BETWEEN_TURNS)
        return ParsedBatch(parse, deliveries, parsed, stored)

    async def append_many(self, batch: ParsedBatch) -> list[bool | None]:
        """Append a parsed batch in one COPY: for each delivery, True if appended, False if a duplicate, None
        if quarantined. Should the database refuse a row, the deliveries are appended one by one the usual
        way instead, which quarantines that one and keeps its neighbours."""
        deliveries = batch.deliveries
        outcomes: list[bool | None] = [None] * len(deliveries)
        try:
            appended = await self._event_log.copy_append([event for _, event in batch.parsed], batch.stored)
        except asyncpg.PostgresError as exc:
            if not refused_by_database(exc):
                raise StoreUnavailableError(f"event log unavailable: {type(exc).__name__}") from exc
            for index, _ in batch.parsed:
                with contextlib.suppress(*REFUSED):
                    appended_one = await self.ingest(batch.parse, deliveries[index], wait_for_room=True)
                    outcomes[index] = not appended_one.duplicate
            return outcomes
        for (index, event), fresh in zip(batch.parsed, appended, strict=True):
            outcomes[index] = fresh
            outcome = "stored" if fresh else "duplicate"
            self._metrics.delivered(deliveries[index].source, type_label(event.notification_type), outcome)
        return outcomes

    async def _refuse(
        self, delivery: Delivery, exc: Exception, notification_type: str | None, *, started: float, keep: bool = True
    ) -> None:
        """Quarantine a delivery that cannot be stored (unless `keep` is False: it is kept there already)."""
        if isinstance(exc, SchemaError | ConversionError):
            notification_type = exc.notification_type
        reason = delivery.reason(exc)
        if keep:
            await self._keep(delivery, exc, reason)
        self._report(delivery, notification_type, "quarantined", started=started, reason=reason)

    async def _keep(self, delivery: Delivery, exc: Exception, reason: str) -> None:
        problems = exc.problems if isinstance(exc, SchemaError) else []
        source, raw, delivery_id, headers = delivery.source, delivery.raw, delivery.delivery_id, delivery.headers
        kept_id = bounded(delivery_id) if delivery_id else None
        full_id = delivery_id if delivery_id and kept_id != delivery_id else None
        refused = Refused(source, reason, raw, kept_id, problems, headers, delivery.signature_verified, full_id)
        await self._quarantine.keep(refused)

    def _report(
        self,
        delivery: Delivery,
        notification_type: str | None,
        outcome: str,
        *,
        started: float,
        appended: Appended | None = None,
        reason: str | None = None,
    ) -> None:
        """Count the delivery and log it: the routine outcomes at DEBUG (a line per notification would cost
        the webhook about 5% of its CPU), the ones an operator should see at WARNING."""
        seconds = time.perf_counter() - started
        self._metrics.delivered(delivery.source, type_label(notification_type), outcome, seconds)
        level = logging.DEBUG if appended is not None else logging.WARNING
        if not log.isEnabledFor(level):
            return
        fields = {
            "source": delivery.source,
            "delivery_id": delivery.delivery_id,
            "notification_type": notification_type,
            "outcome": outcome,
            "latency_ms": round(seconds * 1000, 3),
        }
        if appended is not None:
            fields |= {"position": appended.position, "stream_id": appended.stream_id}
        if reason is not None:
            fields["reason"] = reason
        log.log(level, "notification %s", outcome, extra=fields)


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
