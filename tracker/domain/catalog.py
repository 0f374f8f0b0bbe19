"""Every event type the tracker knows, each declared once, by its domain event class.

A class's `NOTIFICATION_TYPE`, `TOPIC` and `AGGREGATE` are the declaration; what else names a type derives
from the classes here: the wire models' tagged union (`tracker.models`), the routing of a notification to
its stream (`tracker.domain.routing`) and the types each read model folds (`projections`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Each module declares its events when imported: all of them are, before the catalog is read.
from tracker.domain import alerts, config, connection, destination, installation, operator  # noqa: F401
from tracker.domain.base import OWN_PREFIX, TrackerEvent, declared

EVENT_CLASSES: Mapping[str, type[TrackerEvent]] = MappingProxyType(declared())
"""Every declared type and its class: Ampersand's notifications and the tracker's own events."""
NOTIFICATIONS: Mapping[str, type[TrackerEvent]] = MappingProxyType(
    {kind: cls for kind, cls in EVENT_CLASSES.items() if not kind.startswith(OWN_PREFIX)}
)
"""Ampersand's notification types (`shared/spec/notifications.yaml`): each has a wire model and a stream."""
OWN_EVENTS: Mapping[str, type[TrackerEvent]] = MappingProxyType(
    {kind: cls for kind, cls in EVENT_CLASSES.items() if kind.startswith(OWN_PREFIX)}
)
"""The tracker's own events (operator actions, fetched configs): appended by the tracker, never received."""
KNOWN_TYPES: frozenset[str] = frozenset(NOTIFICATIONS)
"""The notification types with a schema: any other type is stored as unrecognized."""


def types_of(*classes: type[TrackerEvent]) -> frozenset[str]:
    """The notification types of `classes`: what a read model folds, or a rule names."""
    return frozenset(cls.NOTIFICATION_TYPE for cls in classes)
