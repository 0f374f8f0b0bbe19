"""Which stream a notification belongs to, and which domain event records it.

The type is never inferred from the shape of the data: the connection.* and installation.* types
share their shapes.
"""

from __future__ import annotations

from typing import Any

from tracker.domain import connection, destination, installation, unrouted
from tracker.domain.base import TrackerAggregate, TrackerEvent
from tracker.domain.catalog import KNOWN_TYPES, NOTIFICATIONS

__all__ = ["KNOWN_TYPES", "MAX_ID_LENGTH", "route"]

# For a type we do not know, the first id its data names decides the stream.
_UNRECOGNIZED: tuple[tuple[type[TrackerAggregate], type[TrackerEvent]], ...] = (
    (installation.Installation, installation.Unrecognized),
    (connection.Connection, connection.Unrecognized),
    (destination.Destination, destination.Unrecognized),
)


MAX_ID_LENGTH = 256
"""As the wire models allow for known types: longer ids are not Ampersand's and are not indexed."""


def route(notification_type: str, data: dict[str, Any]) -> tuple[str, type[TrackerEvent]]:
    """Return the stream id and the event class for a validated notification."""
    known = NOTIFICATIONS.get(notification_type)
    if known is not None:
        aggregate = known.AGGREGATE
        return aggregate.stream_id(data[aggregate.ID_FIELD]), known
    for aggregate, event_class in _UNRECOGNIZED:
        entity_id = data.get(aggregate.ID_FIELD)
        if isinstance(entity_id, str) and 0 < len(entity_id) <= MAX_ID_LENGTH:
            return aggregate.stream_id(entity_id), event_class
    return unrouted.Unrouted.stream_id(notification_type), unrouted.Unrecognized
