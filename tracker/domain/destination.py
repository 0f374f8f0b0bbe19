"""A notification destination of a project (a webhook): the stream `destination:<destinationId>`."""

from __future__ import annotations

from typing import Any

from tracker.domain.base import TrackerAggregate, TrackerEvent, UnrecognizedEvent


class Destination(TrackerAggregate):
    TOPIC = "tracker.Destination"
    STREAM_PREFIX = "destination"
    ID_FIELD = "destinationId"

    def initialise(self) -> None:
        self.identity: dict[str, Any] = {}
        self.disabled = False


class DestinationEvent(TrackerEvent):
    AGGREGATE = Destination

    def apply(self, aggregate: Any) -> None:
        aggregate.identity = {**aggregate.identity, **self.data}


class WebhookDisabled(DestinationEvent):
    TOPIC = "tracker.destination.webhook.disabled"
    NOTIFICATION_TYPE = "destination.webhook.disabled"

    def apply(self, aggregate: Any) -> None:
        super().apply(aggregate)
        aggregate.disabled = True


class Unrecognized(UnrecognizedEvent, DestinationEvent):  # UnrecognizedEvent first: it changes no state
    TOPIC = "tracker.destination.unrecognized"
