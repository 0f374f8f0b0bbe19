"""Where an operator action enters: an event of our own, appended to the stream of the entity acted on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from tracker.domain.base import TrackerEvent
from tracker.domain.operator import DestinationEnabled, ReadScheduleResumed
from tracker.store.event_log import NewEvent

MAX_TEXT = 1000
"""Longer `by` or `note` texts are cut: they are for people, not for storing documents."""


class DeletedEntityError(Exception):
    """The entity acted on was deleted: an action on it would change nothing."""


@dataclass(frozen=True, slots=True)
class OperatorAction:
    by: str
    note: str | None = None


def resume_read_schedule(installation_id: str, action: OperatorAction) -> NewEvent:
    return _event(ReadScheduleResumed, "installationId", installation_id, action)


def enable_destination(destination_id: str, action: OperatorAction) -> NewEvent:
    return _event(DestinationEnabled, "destinationId", destination_id, action)


def _event(event_class: type[TrackerEvent], id_field: str, entity_id: str, action: OperatorAction) -> NewEvent:
    now = datetime.now(UTC)
    data = {id_field: entity_id, "by": action.by[:MAX_TEXT], "note": action.note[:MAX_TEXT] if action.note else None}
    notification_type = event_class.NOTIFICATION_TYPE
    return NewEvent(
        stream_id=event_class.AGGREGATE.stream_id(entity_id),
        event_class=event_class,
        notification_type=notification_type,
        data=data,
        raw=orjson.dumps({"notificationType": notification_type, "data": data}),
        metadata={"source": "operator", "receivedAt": now.isoformat()},
        dedupe_key=f"operator:{uuid.uuid4()}",  # every action is new: two resumes are two events
        received_at=now,
    )
