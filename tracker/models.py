"""Pydantic wire models of Ampersand notifications (shared/spec/notifications.yaml); used at the edge only."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StringConstraints,
    Tag,
    TypeAdapter,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

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


class InstallationCreated(Wire):
    notification_type: Literal["installation.created"]
    data: InstallationCreatedData


class InstallationUpdated(Wire):
    notification_type: Literal["installation.updated"]
    data: InstallationUpdatedData


class InstallationDeleted(Wire):
    notification_type: Literal["installation.deleted"]
    data: InstallationDeletedData


class ReadBackfillDone(Wire):
    notification_type: Literal["read.backfill.done"]
    data: ReadBackfillDoneData


class ReadSchedulePaused(Wire):
    notification_type: Literal["read.schedule.paused"]
    data: ReadSchedulePausedData


class ReadTriggeredDone(Wire):
    notification_type: Literal["read.triggered.done"]
    data: ReadTriggeredDoneData


class ReadTriggeredFailed(Wire):
    notification_type: Literal["read.triggered.error"]
    data: ReadTriggeredErrorData


class WriteAsyncDone(Wire):
    notification_type: Literal["write.async.done"]
    data: WriteAsyncDoneData


class SubscribeCreateFailed(Wire):
    notification_type: Literal["subscribe.create.error"]
    data: SubscribeCreateErrorData


class ConnectionCreated(Wire):
    notification_type: Literal["connection.created"]
    data: ConnectionFields


class ConnectionRefreshed(Wire):
    notification_type: Literal["connection.refreshed"]
    data: ConnectionFields


class ConnectionUpdated(Wire):
    notification_type: Literal["connection.updated"]
    data: ConnectionFields


class ConnectionDeleted(Wire):
    notification_type: Literal["connection.deleted"]
    data: ConnectionFields


class ConnectionFailed(Wire):
    notification_type: Literal["connection.error"]
    data: ConnectionErrorData


class DestinationWebhookDisabled(Wire):
    notification_type: Literal["destination.webhook.disabled"]
    data: DestinationWebhookDisabledData


class Unrecognized(Wire):
    """A type the spec does not list yet: stored as received, never rejected."""

    notification_type: str
    data: dict[str, Any]


KNOWN_TYPES: frozenset[str] = frozenset(
    {
        "installation.created",
        "installation.updated",
        "installation.deleted",
        "read.backfill.done",
        "read.schedule.paused",
        "read.triggered.done",
        "read.triggered.error",
        "write.async.done",
        "subscribe.create.error",
        "connection.created",
        "connection.refreshed",
        "connection.updated",
        "connection.deleted",
        "connection.error",
        "destination.webhook.disabled",
    }
)


def notification_tag(raw: Any) -> str:
    """Pick the union member from the type, so only that one is validated and unknown types still pass."""
    kind = raw.get("notificationType") if isinstance(raw, dict) else getattr(raw, "notification_type", None)
    return kind if kind in KNOWN_TYPES else "unrecognized"


Notification = Annotated[
    Annotated[InstallationCreated, Tag("installation.created")]
    | Annotated[InstallationUpdated, Tag("installation.updated")]
    | Annotated[InstallationDeleted, Tag("installation.deleted")]
    | Annotated[ReadBackfillDone, Tag("read.backfill.done")]
    | Annotated[ReadSchedulePaused, Tag("read.schedule.paused")]
    | Annotated[ReadTriggeredDone, Tag("read.triggered.done")]
    | Annotated[ReadTriggeredFailed, Tag("read.triggered.error")]
    | Annotated[WriteAsyncDone, Tag("write.async.done")]
    | Annotated[SubscribeCreateFailed, Tag("subscribe.create.error")]
    | Annotated[ConnectionCreated, Tag("connection.created")]
    | Annotated[ConnectionRefreshed, Tag("connection.refreshed")]
    | Annotated[ConnectionUpdated, Tag("connection.updated")]
    | Annotated[ConnectionDeleted, Tag("connection.deleted")]
    | Annotated[ConnectionFailed, Tag("connection.error")]
    | Annotated[DestinationWebhookDisabled, Tag("destination.webhook.disabled")]
    | Annotated[Unrecognized, Tag("unrecognized")],
    Discriminator(notification_tag),
]
NOTIFICATION: TypeAdapter[Notification] = TypeAdapter(Notification)
"""Built once at import: building the validator per request would dominate the webhook's cost."""
