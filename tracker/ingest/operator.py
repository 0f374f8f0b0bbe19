"""Where an operator action enters: an event of our own, appended to the stream of the entity acted on.

Each action is decided on the entity's state, rebuilt from its stream by eventsourcing (the mapper, then
the events' own `mutate`), and appended only if the stream has not moved since: an `installation.deleted`
that lands between the decision and the append makes the decision stale, so it is taken again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from eventsourcing.application import project_aggregate

from tracker.domain.base import TrackerAggregate, TrackerEvent
from tracker.domain.destination import Destination
from tracker.domain.installation import Installation
from tracker.domain.operator import DestinationEnabled, ReadScheduleResumed
from tracker.store.event_log import Appended, EventLog, NewEvent, StreamChangedError

MAX_TEXT = 1000
"""Longer `by` or `note` texts are cut: they are for people, not for storing documents."""
ATTEMPTS = 5
"""Decisions taken before giving up on a stream that keeps moving under them (each reloads the stream)."""

Entity = TypeVar("Entity", bound=TrackerAggregate)


class DeletedEntityError(Exception):
    """The entity acted on was deleted: an action on it would change nothing."""


@dataclass(frozen=True, slots=True)
class OperatorAction:
    by: str
    note: str | None = None


async def resume_read_schedule(event_log: EventLog, installation_id: str, action: OperatorAction) -> Appended:
    """Record that an operator saw to a paused read schedule; LookupError for an unknown installation,
    DeletedEntityError for a deleted one."""

    def refuse_if_deleted(installation: Installation) -> None:
        if installation.deleted:
            msg = f"installation {installation_id!r} was deleted"
            raise DeletedEntityError(msg)

    event = _event(ReadScheduleResumed, installation_id, action)
    return await decide_and_append(event_log, Installation, event, refuse_if_deleted)


async def enable_destination(event_log: EventLog, destination_id: str, action: OperatorAction) -> Appended:
    """Record that an operator re-enabled a destination; LookupError for an unknown destination."""

    def allow(destination: Destination) -> None:
        """Any destination Ampersand told us of may be re-enabled (Ampersand sends no event for it)."""

    return await decide_and_append(event_log, Destination, _event(DestinationEnabled, destination_id, action), allow)


async def load(event_log: EventLog, aggregate: type[Entity], stream_id: str) -> Entity | None:
    """The entity as its stream's events, decoded by the mapper, leave it; None for a stream with no event."""
    entity = project_aggregate(None, await event_log.domain_events(stream_id))
    if entity is not None and not isinstance(entity, aggregate):
        msg = f"stream {stream_id!r} holds a {type(entity).__name__}, not a {aggregate.__name__}"
        raise TypeError(msg)
    return entity


async def decide_and_append(
    event_log: EventLog, aggregate: type[Entity], event: NewEvent, decide: Callable[[Entity], None]
) -> Appended:
    """Load the entity, let `decide` refuse the action (by raising), then append `event` at the version the
    decision saw; should the stream move meanwhile, decide again, up to ATTEMPTS times."""
    for _ in range(ATTEMPTS - 1):
        try:
            return await _decide_and_append_once(event_log, aggregate, event, decide)
        except StreamChangedError:
            continue  # an event landed since the decision: take it again on the new state
    return await _decide_and_append_once(event_log, aggregate, event, decide)


async def _decide_and_append_once(
    event_log: EventLog, aggregate: type[Entity], event: NewEvent, decide: Callable[[Entity], None]
) -> Appended:
    entity = await load(event_log, aggregate, event.stream_id)
    if entity is None:
        kind, entity_id = event.stream_id.split(":", 1)
        msg = f"no {kind} {entity_id!r}"
        raise LookupError(msg)
    decide(entity)
    return await event_log.append_expecting(event, entity.version)


def _event(event_class: type[TrackerEvent], entity_id: str, action: OperatorAction) -> NewEvent:
    data = {"by": action.by[:MAX_TEXT], "note": action.note[:MAX_TEXT] if action.note else None}
    return own_event(event_class, entity_id, data, "operator")


def own_event(
    event_class: type[TrackerEvent],
    entity_id: str,
    data: dict[str, Any],
    source: str,
    raw: dict[str, Any] | None = None,
) -> NewEvent:
    """An event of the tracker's own, with `data` after the id of the entity it is about. `raw` is what was
    asked for, stored as the event's raw bytes (the data itself when None)."""
    now = datetime.now(UTC)
    data = {event_class.AGGREGATE.ID_FIELD: entity_id, **data}
    notification_type = event_class.NOTIFICATION_TYPE
    return NewEvent(
        stream_id=event_class.AGGREGATE.stream_id(entity_id),
        event_class=event_class,
        notification_type=notification_type,
        data=data,
        raw=orjson.dumps({"notificationType": notification_type, "data": data if raw is None else raw}),
        metadata={"source": source, "receivedAt": now.isoformat()},
        dedupe_key=f"{source}:{uuid.uuid4()}",  # every action is new: two resumes are two events
        received_at=now,
    )
