"""The one path every notification takes, whatever door it came in by.

Parse, quarantine what is refused, route to a stream, append. The webhook, the file import and
`Tracker.ingest` differ only in how they parse and in what they know of the delivery.
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
from eventsourcing.persistence import StoredEvent

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
                notification = parse(delivery.raw)
                notification_type = notification.notification_type
                appended = await self._commit.append(new_event(notification, delivery), wait_for_room=wait_for_room)
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
        for index, delivery in enumerate(deliveries):
            try:
                parsed.append((index, new_event(parse(delivery.raw), delivery)))
            except REFUSED as exc:
                await self._refuse(delivery, exc, None, started=started)
            await give_way(index + 1, _PARSED_BETWEEN_TURNS)
        stored = await self._event_log.stored([event for _, event in parsed])
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
        if isinstance(exc, SchemaError):
            notification_type = exc.notification_type
        if keep:
            await self._keep(delivery, exc)
        self._report(delivery, notification_type, "quarantined", started=started, reason=str(exc))

    async def _keep(self, delivery: Delivery, exc: Exception) -> None:
        problems = exc.problems if isinstance(exc, SchemaError) else []
        source, raw, delivery_id, headers = delivery.source, delivery.raw, delivery.delivery_id, delivery.headers
        kept_id = bounded(delivery_id) if delivery_id else None
        full_id = delivery_id if delivery_id and kept_id != delivery_id else None
        refused = Refused(source, str(exc), raw, kept_id, problems, headers, delivery.signature_verified, full_id)
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
