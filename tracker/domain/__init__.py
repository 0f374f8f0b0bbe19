"""The domain layer: eventsourcing aggregates and events, no I/O. Importing it registers every topic."""

from tracker.domain.connection import Connection
from tracker.domain.destination import Destination
from tracker.domain.installation import Installation
from tracker.domain.routing import KNOWN_TYPES, route

__all__ = ["KNOWN_TYPES", "Connection", "Destination", "Installation", "route"]
