"""The domain layer: eventsourcing aggregates and events, no I/O. Importing it registers every topic."""

from tracker.domain.catalog import EVENT_CLASSES, KNOWN_TYPES, NOTIFICATIONS, OWN_EVENTS, types_of
from tracker.domain.connection import Connection
from tracker.domain.destination import Destination
from tracker.domain.installation import Installation
from tracker.domain.routing import route

__all__ = [
    "EVENT_CLASSES", "KNOWN_TYPES", "NOTIFICATIONS", "OWN_EVENTS", "Connection", "Destination", "Installation",
    "route", "types_of",
]  # fmt: skip
