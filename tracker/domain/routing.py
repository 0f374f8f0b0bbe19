"""Which stream a notification belongs to, and which domain event records it.

The type is never inferred from the shape of the data: the connection.* and installation.* types
share their shapes.
"""

from __future__ import annotations

from typing import Any

from tracker.domain import connection, destination, installation, unrouted
from tracker.domain.base import TrackerAggregate, TrackerEvent

_KNOWN: dict[str, type[TrackerEvent]] = {
    cls.NOTIFICATION_TYPE: cls
    for module in (installation, connection, destination)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, TrackerEvent) and cls.NOTIFICATION_TYPE
}
KNOWN_TYPES = frozenset(_KNOWN)

# For a type we do not know, the first id its data names decides the stream.
_UNRECOGNIZED: tuple[tuple[str, type[TrackerAggregate], type[TrackerEvent]], ...] = (
    ("installationId", installation.Installation, installation.Unrecognized),
    ("connectionId", connection.Connection, connection.Unrecognized),
    ("destinationId", destination.Destination, destination.Unrecognized),
)


MAX_ID_LENGTH = 256
"""As the wire models allow for known types: longer ids are not Ampersand's and are not indexed."""


def route(notification_type: str, data: dict[str, Any]) -> tuple[str, type[TrackerEvent]]:
    """Return the stream id and the event class for a validated notification."""
    known = _KNOWN.get(notification_type)
    if known is not None:
        return known.AGGREGATE.stream_id(data[_ID_FIELD[known.AGGREGATE]]), known
    for field, aggregate, event_class in _UNRECOGNIZED:
        entity_id = data.get(field)
        if isinstance(entity_id, str) and 0 < len(entity_id) <= MAX_ID_LENGTH:
            return aggregate.stream_id(entity_id), event_class
    return unrouted.Unrouted.stream_id(notification_type), unrouted.Unrecognized


_ID_FIELD: dict[type[TrackerAggregate], str] = {aggregate: field for field, aggregate, _ in _UNRECOGNIZED}
