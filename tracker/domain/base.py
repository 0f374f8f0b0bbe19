"""The event and aggregate bases that let eventsourcing hold Ampersand's string ids.

eventsourcing 9.5's own `DomainEvent` insists on UUID originator ids and its aggregates expect a
"created" event first. Ampersand's ids are strings, and deliveries are reordered (a
`read.backfill.done` may arrive before `installation.created`), so any event may open a stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar

from eventsourcing.domain import BaseAggregate, CanMutateAggregate, MetaDomainEvent
from eventsourcing.utils import register_topic

TAggregate = TypeVar("TAggregate", bound="TrackerAggregate")


class TrackerEvent(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """One Ampersand notification, as stored in its entity's stream."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    """When the tracker received the notification (Ampersand sends no event time)."""
    data: dict[str, Any]
    """The notification's `data` object exactly as Ampersand sent it."""

    TOPIC: ClassVar[str] = ""
    NOTIFICATION_TYPE: ClassVar[str] = ""
    AGGREGATE: ClassVar[type[TrackerAggregate]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.TOPIC:  # explicit topics survive renames and moves of the class
            register_topic(cls.TOPIC, cls)

    def mutate(self, aggregate: Any) -> Any:
        """Open the aggregate if this is the first event of its stream, then apply."""
        if aggregate is None:
            aggregate = self.AGGREGATE.open(self.originator_id, self.originator_version, self.timestamp)
        return super().mutate(aggregate)


class UnrecognizedEvent(TrackerEvent):
    """A notification of a type this tracker does not know yet: kept, shown in timelines, not projected."""

    notification_type: str

    def apply(self, aggregate: Any) -> None:
        """Change nothing: what an unknown type means is not known yet."""


class TrackerAggregate(BaseAggregate[str]):
    """An entity whose state the library reconstitutes from its stream."""

    STREAM_PREFIX: ClassVar[str] = ""

    @classmethod
    def stream_id(cls, entity_id: str) -> str:
        return f"{cls.STREAM_PREFIX}:{entity_id}"

    @classmethod
    def open(cls: type[TAggregate], stream_id: str, first_version: int, timestamp: datetime) -> TAggregate:
        """Build an empty aggregate just before the first event of its stream."""
        aggregate = cls.__new__(cls)
        aggregate.__base_init__(stream_id, first_version - 1, timestamp)
        aggregate.initialise()
        return aggregate

    def initialise(self) -> None:
        """Set the state an entity has before any notification is applied."""
