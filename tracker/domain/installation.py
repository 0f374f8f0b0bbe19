"""An installation of an integration for one customer: the stream `installation:<installationId>`."""

from __future__ import annotations

from typing import Any

from tracker.domain.base import TrackerAggregate, TrackerEvent, UnrecognizedEvent


class Installation(TrackerAggregate):
    """What Ampersand has told us about one installation, as facts (rules live in projections)."""

    TOPIC = "tracker.Installation"
    STREAM_PREFIX = "installation"
    ID_FIELD = "installationId"

    def initialise(self) -> None:
        self.identity: dict[str, Any] = {}
        self.deleted = False
        self.config: dict[str, Any] | None = None
        self.config_url: str | None = None
        self.config_missing = False
        """The latest config was sent by URL only, and no fetched content has arrived for it yet."""


class InstallationEvent(TrackerEvent):
    """Every installation notification carries the installation's identity fields."""

    AGGREGATE = Installation

    def apply(self, aggregate: Any) -> None:
        aggregate.identity = {**aggregate.identity, **_identity(self.data)}
        config = self.data.get("config")
        if isinstance(config, dict) and config:
            aggregate.config = config
            aggregate.config_missing = False
        elif isinstance(self.data.get("configURL"), str):
            aggregate.config_missing = True
        if isinstance(url := self.data.get("configURL"), str):
            aggregate.config_url = url


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key in IDENTITY_FIELDS}


IDENTITY_FIELDS = frozenset({
    "installationId", "projectId", "provider", "integrationId", "integrationName",
    "groupRef", "groupName", "consumerRef", "consumerName", "connectionId",
})  # fmt: skip


class Created(InstallationEvent):
    TOPIC = "tracker.installation.created"
    NOTIFICATION_TYPE = "installation.created"


class Updated(InstallationEvent):
    TOPIC = "tracker.installation.updated"
    NOTIFICATION_TYPE = "installation.updated"


class Deleted(InstallationEvent):
    TOPIC = "tracker.installation.deleted"
    NOTIFICATION_TYPE = "installation.deleted"

    def apply(self, aggregate: Any) -> None:
        super().apply(aggregate)
        aggregate.deleted = True


class BackfillDone(InstallationEvent):
    TOPIC = "tracker.read.backfill.done"
    NOTIFICATION_TYPE = "read.backfill.done"


class ReadSchedulePaused(InstallationEvent):
    TOPIC = "tracker.read.schedule.paused"
    NOTIFICATION_TYPE = "read.schedule.paused"


class TriggeredReadDone(InstallationEvent):
    TOPIC = "tracker.read.triggered.done"
    NOTIFICATION_TYPE = "read.triggered.done"


class TriggeredReadFailed(InstallationEvent):
    TOPIC = "tracker.read.triggered.error"
    NOTIFICATION_TYPE = "read.triggered.error"


class AsyncWriteDone(InstallationEvent):
    TOPIC = "tracker.write.async.done"
    NOTIFICATION_TYPE = "write.async.done"


class SubscribeFailed(InstallationEvent):
    TOPIC = "tracker.subscribe.create.error"
    NOTIFICATION_TYPE = "subscribe.create.error"


class Unrecognized(UnrecognizedEvent, InstallationEvent):  # UnrecognizedEvent first: it changes no state
    TOPIC = "tracker.installation.unrecognized"
