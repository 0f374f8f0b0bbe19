"""The bodies the API takes and gives, as pydantic models: their schemas are the OpenAPI document's.

An answer the API assembles is `Closed`: camelCase as served, and no key but its fields (`extra="forbid"`,
`additionalProperties: false`), so an answer that grows a key its model lacks fails the tests that check real
answers against the document. The read models' views (`projections/`) are served as stored documents and stay
open here: a blue/green rebuild serves the old documents until the new ones are ready. The bodies the API
takes stay open too: the handlers ignore keys they do not read.

The handlers build their answers as plain dicts (the hot paths serve stored JSON as it is); these models
describe them, and the tests hold the two together.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass
from pydantic.json_schema import SkipJsonSchema

from projections.config_versions import Change, ConfigVersion
from projections.connections import ConnectionView
from projections.destinations import DestinationView
from projections.installations import InstallationView
from projections.issues import Issue

_CAMEL = ConfigDict(alias_generator=to_camel, validate_by_alias=True, validate_by_name=False,
                    use_attribute_docstrings=True)  # fmt: skip
CLOSED = ConfigDict(**_CAMEL, extra="forbid")


class Closed(BaseModel):
    """An answer the API assembles: these keys, camelCase, and no other."""

    model_config = ConfigDict(**CLOSED, frozen=True)


class Taken(BaseModel):
    """A body the API takes: camelCase; other keys are ignored, as the handler ignores them."""

    model_config = ConfigDict(**_CAMEL, frozen=True)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent() -> Any:
    """A key that may be left out (and is then absent, not null): optional, with no default in the schema."""
    return Field(default=None, json_schema_extra=_no_default)


class Problem(Closed):
    """Every error the API answers: `error` says what is wrong; the other fields add detail where known."""

    error: str
    detail: str | SkipJsonSchema[None] = absent()
    problems: list[str] | SkipJsonSchema[None] = absent()
    """One line per schema problem (422)."""
    type: str | SkipJsonSchema[None] = absent()
    """The notification type whose schema the body fails (422)."""
    filters: list[str] | SkipJsonSchema[None] = absent()
    """The filters a list route takes (400 for an unknown one)."""
    newest: int | SkipJsonSchema[None] = absent()
    """The newest config version (400 for one out of range)."""
    position: int | SkipJsonSchema[None] = absent()
    """How far the read models have got (503 for `minPosition`)."""
    reason: str | SkipJsonSchema[None] = absent()
    review_status: str | SkipJsonSchema[None] = absent()
    dead_letter_status: str | SkipJsonSchema[None] = absent()
    replayed_position: int | None = absent()
    note: str | None = absent()


class Appended(Closed):
    """Where a delivery went; `duplicate` when that delivery was in the log already (nothing appended)."""

    duplicate: bool
    position: int
    stream_id: str
    version: int


class Recorded(Closed):
    """The event an operator action appended."""

    position: int
    stream_id: str
    version: int


class OperatorAction(Taken):
    by: str | SkipJsonSchema[None] = absent()
    """Who acted (default `operator`)."""
    note: str | SkipJsonSchema[None] = absent()


class Discard(Taken):
    note: str
    """Why the delivery is discarded (required here or as `?note=`)."""


class InstallationPage(Closed):
    items: list[InstallationView]
    next_cursor: str | None
    """Pass it as `cursor` for the next page; null on the last."""


class ConnectionPage(Closed):
    items: list[ConnectionView]
    next_cursor: str | None


class DestinationPage(Closed):
    items: list[DestinationView]
    next_cursor: str | None


class TimelineEvent(Closed):
    position: int
    version: int
    type: str
    received_at: str
    data: Any
    """The notification's data; its config URLs (`configURL`, `lastConfigURL`, a fetch's `url`) without their query."""
    metadata: dict[str, Any]


class Timeline(Closed):
    items: list[TimelineEvent]
    next_cursor: int | None
    """Pass it as `after` for the next page; null on the last."""


@dataclass(frozen=True, kw_only=True, config=CLOSED)
class ConfigVersionContent(ConfigVersion):
    """A config version with its content."""

    config: dict[str, Any]
    """The content of that version, as Ampersand sent it."""


class ConfigVersions(Closed):
    items: list[ConfigVersionContent]
    """Oldest first."""


class ConfigDiff(Closed):
    from_: int = Field(alias="from")
    to: int
    changes: list[Change]


@dataclass(frozen=True, kw_only=True, config=CLOSED)
class ListedIssue(Issue):
    """An issue with the entity whose events open it, and where it is listed."""

    entity: str
    """installation, connection or destination"""
    entity_id: str
    project_id: str | None
    integration_id: str | None


class IssuePage(Closed):
    items: list[ListedIssue]
    next_cursor: str | None


class HealthCounts(Closed):
    healthy: int
    degraded: int
    unhealthy: int
    deleted: int
    total: int


class HealthSummary(Closed):
    installations: HealthCounts
    open_issues: dict[str, int]
    """Open issues by reason code."""


class Integration(Closed):
    integration_id: str | None
    integration_name: str | None
    provider: str | None
    installations: HealthCounts


class Integrations(Closed):
    items: list[Integration]


class QuarantinedDelivery(Closed):
    """A kept delivery: `body` when it is UTF-8, else `bodyBase64`; its URLs without their query. No header whose
    name may carry a credential is kept."""

    id: int
    received_at: str
    source: str
    delivery_id: str | None
    reason: str
    problems: list[str]
    headers: dict[str, str]
    status: str
    resolved_at: str | None
    note: str | None
    replayed_position: int | None
    last_replay_error: str | None
    body: str | SkipJsonSchema[None] = absent()
    body_base64: str | SkipJsonSchema[None] = absent()


class QuarantinePage(Closed):
    items: list[QuarantinedDelivery]
    next_cursor: str | None


class QuarantineCounts(Closed):
    pending: int
    replayed: int
    discarded: int


class Rebuild(Closed):
    """A read model's latest blue/green rebuild and its progress."""

    version: int
    phase: str
    """replaying, catching up, switching, done or failed"""
    started_at: str
    finished_at: str | None
    events_done: int
    events_total: int
    events_per_second: float | None
    eta_seconds: float | None
    matched_live: bool | None
    """For a rebuild at the same version: whether the rebuilt rows equal the live ones."""
    rows_changed: int | None
    error: str | None


class Freshness(Closed):
    """How far a read model has got, the version of its logic, its open dead letters and latest rebuild."""

    name: str
    position: int
    lag: int
    """Events in the log after its position."""
    lag_seconds: float
    heartbeat_age_seconds: float | None
    """Seconds since its runner last beat; null if none ever did."""
    version: int
    """The version of its logic in this code."""
    stored_version: int | None
    """The version of the logic that wrote its rows; null before its runner first ran."""
    dead_letters: dict[str, int]
    """Open dead letters by status (retrying, parked, skipping)."""
    rebuild: Rebuild | None


class KinesisShard(Closed):
    shard_id: str
    parent_shard_ids: list[str]
    owner: str | None
    """The consumer holding its lease; null when free or expired."""
    lease_seconds_left: float | None
    checkpoint: str | None
    checkpointed_at: str | None
    closed: bool
    """Closed by a split or a merge."""
    finished: bool
    """Read to its end: its children may be read."""
    millis_behind_latest: int | None


class KinesisStream(Closed):
    stream: str
    shards: list[KinesisShard]


class AlertSubscriptionCounts(Closed):
    active: int
    failing: int
    """Active, and marked failing."""
    disabled: int


class FailingSubscription(Closed):
    subscription_id: str
    since: str | None
    error: str | None


class AlertDeliveryCounts(Closed):
    pending: int
    """Due, or waiting to retry."""
    delivered: int
    failed: int
    suppressed: int
    """Not sent: a flap within `delaySeconds`, or a resolved alert whose opened one was not sent."""
    cancelled: int
    """Not sent: the subscription was deleted or disabled first."""


class AlertsStatus(Closed):
    subscriptions: AlertSubscriptionCounts
    failing: list[FailingSubscription]
    deliveries: AlertDeliveryCounts
    outbox: int
    """Issue transitions not fanned out to subscriptions yet."""
    oldest_wait_seconds: float | None
    """How long the oldest transition in the outbox, or the longest-due delivery, has waited."""


class Status(Closed):
    events: int
    head: int
    """The position of the newest event."""
    quarantined: int
    """Pending quarantine rows."""
    quarantine: QuarantineCounts
    projections: list[Freshness]
    kinesis: list[KinesisStream]
    alerts: AlertsStatus
    signatures_verified: bool
    warnings: list[str]


class Readiness(Closed):
    ready: bool
    problems: list[str]


class RebuildStarted(Closed):
    name: str
    phase: str
    status: str
    """Where its progress shows: `/v1/status`."""


class DeadLetter(Closed):
    """An event a read model failed to fold: it holds back only its own entity."""

    id: int
    projection: str
    entity_id: str
    position: int
    event_type: str
    error: str
    attempts: int
    status: str
    first_failed_at: str
    last_failed_at: str
    next_attempt_at: str | None
    resolved_at: str | None


class DeadLetterPage(Closed):
    items: list[DeadLetter]
    next_cursor: str | None


class ChangeEvent(Closed):
    """The `data:` of each event of `GET /v1/changes`; its `id:` is `seq`, its `event:` the entity."""

    seq: int
    entity: str
    """installation, connection or destination"""
    entity_id: str
    position: int
    document: dict[str, Any]
    """As `GET /v1/<entity>s/{id}` serves it."""
