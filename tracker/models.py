"""Pydantic wire models of Ampersand notifications (shared/spec/notifications.yaml); used at the edge only.

Each notification type is declared once, by its domain event class (`tracker.domain.catalog`); here each
class gets the model of its `data`, and the envelope and the tagged union are built from that.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StringConstraints,
    Tag,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from tracker.domain import connection, destination, installation
from tracker.domain.base import TrackerEvent
from tracker.domain.catalog import KNOWN_TYPES, NOTIFICATIONS

EntityId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
"""An id that keys a stream or an index: PostgreSQL's btree caps an entry at about 2.7 kB."""


class Wire(BaseModel):
    """Ignore extra fields (the default): the raw body is kept in the log, and Ampersand adds fields.

    Validated by the wire's names only: everything after validation reads the sender's keys, so a
    `connection_id` accepted for `connectionId` would reach routing without the id it needs.
    """

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_alias=True, validate_by_name=False)


class InstallationFields(Wire):
    """Identity fields that every installation-scoped notification carries (all required)."""

    project_id: EntityId
    provider: str
    integration_id: EntityId
    integration_name: str
    installation_id: EntityId
    connection_id: EntityId
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str


class ConfigFields(Wire):
    """The installation config, inline or behind a signed URL when it is too large.

    The spec's `oneOf` forbids both, but the docs send an empty `config` next to `configURL`,
    so both are accepted and only "neither" is rejected (a null counts as absent).
    """

    config: dict[str, Any] | None = None
    """Kept as given: the spec types it only as `object` and the docs' examples use manifest names."""
    config_url: str | None = Field(default=None, alias="configURL")

    @model_validator(mode="after")
    def _require_config_or_url(self) -> Self:
        if self.config is None and self.config_url is None:
            raise PydanticCustomError("config_missing", "needs config or configURL (at least one)")
        return self


class LastConfigFields(Wire):
    """The config before an update; the spec's second `oneOf` makes one of the two required."""

    last_config: dict[str, Any] | None = None
    last_config_url: str | None = Field(default=None, alias="lastConfigURL")

    @model_validator(mode="after")
    def _require_last_config_or_url(self) -> Self:
        if self.last_config is None and self.last_config_url is None:
            raise PydanticCustomError("last_config_missing", "needs lastConfig or lastConfigURL (at least one)")
        return self


class ObjectFields(Wire):
    """The object a read or write ran on."""

    object_name: str


class TriggeredReadFields(ObjectFields):
    """The window of a triggered read; the only way to correlate it, since no operationId is sent."""

    from_timestamp: str | None = None
    """RFC3339 in the spec's examples, but no format is declared, so kept as the string sent."""
    until_timestamp: str | None = None


class InstallationCreatedData(InstallationFields, ConfigFields):
    pass


class InstallationUpdatedData(InstallationFields, ConfigFields, LastConfigFields):
    pass


class InstallationDeletedData(InstallationFields, ConfigFields):
    pass


class ReadBackfillDoneData(InstallationFields, ObjectFields):
    pass


class ReadSchedulePausedData(InstallationFields, ConfigFields):
    error: str | None = None


class ReadTriggeredDoneData(InstallationFields, TriggeredReadFields):
    pass


class ReadTriggeredErrorData(InstallationFields, TriggeredReadFields):
    error: str | None = None


class WriteAsyncDoneData(InstallationFields, ObjectFields):
    success: StrictBool
    """False on partial failure too, with both lists below filled; strict so "false" (a string) is refused."""
    successful_record_ids: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    """Plain messages, not mapped to records."""


class SubscribeCreateErrorData(InstallationFields):
    error: str | None = None


class ConnectionFields(Wire):
    """Data of the connection.* types: no installationId, integrationId or groupName."""

    project_id: EntityId
    connection_id: EntityId
    provider: str
    group_ref: str
    consumer_ref: str
    consumer_name: str


class ConnectionErrorData(ConnectionFields):
    errors: list[str] = Field(default_factory=list)
    error: list[str] = Field(default_factory=list)
    """Deprecated copy of `errors`; an array here, unlike `error` in every other type."""


class DestinationWebhookDisabledData(Wire):
    project_id: EntityId
    destination_id: EntityId
    destination_name: str
    """The join key to read objects, whose config names their destination."""
    url: str


class Unrecognized(Wire):
    """A type the spec does not list yet: stored as received, never rejected."""

    notification_type: str
    data: dict[str, Any]


def _envelope(name: str, event_class: type[TrackerEvent], data: type[Wire]) -> tuple[type[TrackerEvent], type[Wire]]:
    """The model of a whole notification of `event_class`'s type: `{"notificationType": <the type>, "data"}`."""
    kind = Literal[event_class.NOTIFICATION_TYPE]  # type: ignore[name-defined]  # a Literal built from the class
    model = create_model(name, __base__=Wire, __module__=__name__, notification_type=(kind, ...), data=(data, ...))
    return event_class, model


ENVELOPES: dict[type[TrackerEvent], type[Wire]] = dict((
    _envelope("InstallationCreated", installation.Created, InstallationCreatedData),
    _envelope("InstallationUpdated", installation.Updated, InstallationUpdatedData),
    _envelope("InstallationDeleted", installation.Deleted, InstallationDeletedData),
    _envelope("ReadBackfillDone", installation.BackfillDone, ReadBackfillDoneData),
    _envelope("ReadSchedulePaused", installation.ReadSchedulePaused, ReadSchedulePausedData),
    _envelope("ReadTriggeredDone", installation.TriggeredReadDone, ReadTriggeredDoneData),
    _envelope("ReadTriggeredFailed", installation.TriggeredReadFailed, ReadTriggeredErrorData),
    _envelope("WriteAsyncDone", installation.AsyncWriteDone, WriteAsyncDoneData),
    _envelope("SubscribeCreateFailed", installation.SubscribeFailed, SubscribeCreateErrorData),
    _envelope("ConnectionCreated", connection.Created, ConnectionFields),
    _envelope("ConnectionRefreshed", connection.Refreshed, ConnectionFields),
    _envelope("ConnectionUpdated", connection.Updated, ConnectionFields),
    _envelope("ConnectionDeleted", connection.Deleted, ConnectionFields),
    _envelope("ConnectionFailed", connection.Failed, ConnectionErrorData),
    _envelope("DestinationWebhookDisabled", destination.WebhookDisabled, DestinationWebhookDisabledData),
))  # fmt: skip
"""The wire model of each notification type, by its domain event class, in the spec's order."""


class MissingWireModelError(TypeError):
    """A notification type the domain declares has no wire model here, or a wire model has no declared type."""


def _check_every_type_has_a_wire_model() -> None:
    unmatched = ENVELOPES.keys() ^ set(NOTIFICATIONS.values())
    if unmatched:
        kinds = ", ".join(sorted(cls.NOTIFICATION_TYPE for cls in unmatched))
        msg = f"notification types with a wire model or a domain event class, not both: {kinds}"
        raise MissingWireModelError(msg)


_check_every_type_has_a_wire_model()


def notification_tag(raw: Any) -> str:
    """Pick the union member from the type, so only that one is validated and unknown types still pass."""
    kind = raw.get("notificationType") if isinstance(raw, dict) else getattr(raw, "notification_type", None)
    return kind if kind in KNOWN_TYPES else "unrecognized"


_MEMBERS = (
    *(Annotated[model, Tag(event_class.NOTIFICATION_TYPE)] for event_class, model in ENVELOPES.items()),
    Annotated[Unrecognized, Tag("unrecognized")],
)
Notification = Annotated[Union[_MEMBERS], Discriminator(notification_tag)]  # type: ignore[valid-type]  # noqa: UP007
"""Any notification: the member of its type, or `Unrecognized` (built from `ENVELOPES`, hence `Union[...]`)."""
NOTIFICATION: TypeAdapter[Wire] = TypeAdapter(Notification)
"""Built once at import: building the validator per request would dominate the webhook's cost."""

__all__ = ["ENVELOPES", "KNOWN_TYPES", "NOTIFICATION", "Notification", "Unrecognized", "Wire", "notification_tag"]
