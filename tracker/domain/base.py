"""The event and aggregate bases that let eventsourcing hold Ampersand's string ids.

eventsourcing 9.5's own `DomainEvent` insists on UUID originator ids and its aggregates expect a
"created" event first. Ampersand's ids are strings, and deliveries are reordered (a
`read.backfill.done` may arrive before `installation.created`), so any event may open a stream.

Each event class is the one declaration of its type: `NOTIFICATION_TYPE` (what the log's `type` column,
the wire and the read models say), `TOPIC` (what the log stores to decode it) and `AGGREGATE` (whose
stream it goes to). Declaring a class registers its type; `tracker.domain.catalog` lists them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar

from eventsourcing.domain import BaseAggregate, CanMutateAggregate, MetaDomainEvent
from eventsourcing.utils import register_topic

TAggregate = TypeVar("TAggregate", bound="TrackerAggregate")

OWN_PREFIX = "tracker."
"""The types of the tracker's own events (operator actions, fetched configs): a prefix no notification may
use (the parser refuses it), so a sender cannot forge one."""

_DECLARED: dict[str, type[TrackerEvent]] = {}
"""Every event type declared so far, and its class: see `declared`."""


class DuplicateTypeError(TypeError):
    """Two event classes declare one notification type: the log could not tell which one an event is."""


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
    class_version: ClassVar[int] = 1
    """Raise it, with a static `upcast_v1_v2(state)` (and so on), when the shape of what the class stores
    changes: eventsourcing's mapper brings what older versions stored up to date as it decodes an event.
    Stored payloads are never edited."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.TOPIC:  # explicit topics survive renames and moves of the class
            register_topic(cls.TOPIC, cls)
        notification_type = cls.__dict__.get("NOTIFICATION_TYPE")  # its own, not one inherited
        if notification_type:
            known = _DECLARED.setdefault(notification_type, cls)
            if known is not cls:
                msg = f"{notification_type!r} is declared twice: by {known.__qualname__} and {cls.__qualname__}"
                raise DuplicateTypeError(msg)

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


def declared() -> dict[str, type[TrackerEvent]]:
    """The event types declared by the classes defined so far, each with its class."""
    return dict(_DECLARED)


class TrackerAggregate(BaseAggregate[str]):
    """An entity whose state the library reconstitutes from its stream."""

    STREAM_PREFIX: ClassVar[str] = ""
    ID_FIELD: ClassVar[str] = ""
    """The field of a notification's data that names the entity (`installationId`); "" if none does."""

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
