"""A customer's connection to a provider: the stream `connection:<connectionId>`."""

from __future__ import annotations

from typing import Any

from tracker.domain.base import TrackerAggregate, TrackerEvent, UnrecognizedEvent


class Connection(TrackerAggregate):
    """What Ampersand has told us about one connection."""

    TOPIC = "tracker.Connection"
    STREAM_PREFIX = "connection"
    ID_FIELD = "connectionId"

    def initialise(self) -> None:
        self.identity: dict[str, Any] = {}
        self.deleted = False
        self.errors: list[str] = []


class ConnectionEvent(TrackerEvent):
    AGGREGATE = Connection

    def apply(self, aggregate: Any) -> None:
        aggregate.identity = {**aggregate.identity, **self.data}


class Created(ConnectionEvent):
    TOPIC = "tracker.connection.created"
    NOTIFICATION_TYPE = "connection.created"


class Refreshed(ConnectionEvent):
    TOPIC = "tracker.connection.refreshed"
    NOTIFICATION_TYPE = "connection.refreshed"


class Updated(ConnectionEvent):
    TOPIC = "tracker.connection.updated"
    NOTIFICATION_TYPE = "connection.updated"


class Deleted(ConnectionEvent):
    TOPIC = "tracker.connection.deleted"
    NOTIFICATION_TYPE = "connection.deleted"

    def apply(self, aggregate: Any) -> None:
        super().apply(aggregate)
        aggregate.deleted = True


class Failed(ConnectionEvent):
    TOPIC = "tracker.connection.error"
    NOTIFICATION_TYPE = "connection.error"

    def apply(self, aggregate: Any) -> None:
        super().apply(aggregate)
        aggregate.errors = list(self.data.get("errors") or self.data.get("error") or [])


class Unrecognized(UnrecognizedEvent, ConnectionEvent):  # UnrecognizedEvent first: it changes no state
    TOPIC = "tracker.connection.unrecognized"
